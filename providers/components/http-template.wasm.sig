{
  "v": 1,
  "kind": "component",
  "sha256": "570bfcaaac21b507f66304e7f75bd808cc408a6fcfdd0b0a7933368aa4df0bce",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "44VVOcVpHFUXqC7SJFmbE5kQczF4Cgxk6HN1X_eC6kc9b70Gv-uh1vip8u5oR9eXPR4FUdXYQDGH9Iu2NPpsAw"
}
