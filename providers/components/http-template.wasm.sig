{
  "v": 1,
  "kind": "component",
  "sha256": "4a424722d87218bedd3180602cd2cae6d5ac35a43075a9e5ac6cb94ff4ae1c48",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "6Cxjaf4U913tBIVlQwCkSauFDiqfPjp9Em5iGSYf9zWlZ7Jlil6d0aJu-mam6JHXihfHmBfKggqbBt_dzyH5AA"
}
