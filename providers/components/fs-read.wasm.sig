{
  "v": 1,
  "kind": "component",
  "sha256": "ef9a8d7dc7b2938f18c21404a699b0d6dd05c9c8640cee5d9cdf7047fa573d1c",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "1MF85nERxk-UQW3c0aJXtR57kW0uFCu_NAn5sg2_izlwgApCrPPxlF2YuPUtpRZEbSKKkUcaprLqRPZv7FofDw"
}
