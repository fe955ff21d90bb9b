{
  "v": 1,
  "kind": "component",
  "sha256": "7f0efd3787e418ffbc81f78461646314f8d21519ed9f58a979dc0c1c70e0b976",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "QKkjRz4ZtSmnrQGSj8yaE95uG3Rp7ElqrcR6cNe6ISLGAfFeT93qzQ58rtuS1I51QLMwOYPRJwFqNBedXfggAA"
}
