{
  "v": 1,
  "kind": "component",
  "sha256": "736e477421e286a0778849e9ebb76cb4da9704d43483f65309806c8a5f9f5d35",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "3ia3VWDJigb5yT2SgddsBDccCgDIVV73dGoW0Z1BEgGWEP9Z4NQtMS0pCi-b5B1czBw8B80IHS8LYo7v0K3OBg"
}
