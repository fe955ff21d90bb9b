{
  "v": 1,
  "kind": "component",
  "sha256": "674ff1335f2d53a89b3c5ba091cf5568aad9dc36024b40b5a4c4bd9aeb11a258",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "SHbWO7SCBErDGRVjmfVFtDKHrPG-BZM4agPtZSI5mgTGukjX3TXjjOO5xB8jd1Y-nDbWihui7C2VxBMBzR1UAQ"
}
