{
  "v": 1,
  "kind": "component",
  "sha256": "4425f36ec4fd1f54549631bb2fed663dbb6c874e822d02c3e6fd82d342043b20",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "Lf6cl9NDsmKeHWdhTa4k9QGD5h_2N4d4SOuv9NBlx5a23qp0D0ksZxkWDwXfMTvhOY2SOP7mP9KZ61t5E3QBDA"
}
