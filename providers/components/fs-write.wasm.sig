{
  "v": 1,
  "kind": "component",
  "sha256": "4c71593dacb8c13ddd777c4363e6abdfab13aa3ad293ddd67a2427ee8252bbe5",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "juHuqJJ1WmgxGc96T1vfgabTzrfCi7E67YvqQce5y1EoG84A93RELBbBV8vkldddLPTHPZZ67IcrQr-X7ul-BA"
}
