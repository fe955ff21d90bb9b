{
  "v": 1,
  "kind": "component",
  "sha256": "8df5c8e31cdb790b9cfc8cb333d7c886b1a129f63c6adf8580c1bbc02875144b",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "TFlM-Gt8rlnKoVgQ5gaeL5CrqtrG699mfLpIZKso22-C_yzsTEoB8RoABkY4dwmX-8O_qvl6pQ6DN9GfGMfJBg"
}
