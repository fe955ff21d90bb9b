{
  "v": 1,
  "kind": "component",
  "sha256": "1c7e42328ba3f3b908334bc17aeecb3fc75bd7b156e8649447818971fc87edaa",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "0Fc5P3jXlJ2LQZK42k4cT-GWF8X0qabReejq7QrDp9r5T9mxxMroDBTVXrw4tMEJhlhu8h7rcEkKY_cyFqkJCQ"
}
