{
  "v": 1,
  "kind": "component",
  "sha256": "3c5d97babe7af5c2c29c85c34a6ed419023c992f57c76622762750004335db3b",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "7b_QwCHNvSPl5giHBJAGSRfHzkMmbN23EOuQsMFXnnYDWeWih4zEfr_3R0UTZ7ZEq6dcXRU0hzy4T7ijUexcDw"
}
