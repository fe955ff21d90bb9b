{
  "v": 1,
  "kind": "component",
  "sha256": "10c159a6fe9c8afa28faa2664c1deb7aaea79f06f8e68825bc8e15d1d5aed98a",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "RBxLc2NXmndcCik6LhVsJVnkoCYBP-_Nr0zhPJmkydv45mc9Vdc7LMEbg8wR0PKDfY-GSiIhd9Ocer2Tr2-tAg"
}
