{
  "v": 1,
  "kind": "component",
  "sha256": "6f7a455a731003f9d0d7c8f84e7ae0d97bd0cb07826cc3cfa9a138e39d515ad5",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "SaFqL7JPDJhtnq9lfKH3FRXohAvtd6JL2oAKf_NlW5Tmv1cazqs5BfexgRCKcw2tVk8SNkVaSAL_CVp5iFsqBA"
}
