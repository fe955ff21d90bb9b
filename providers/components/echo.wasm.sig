{
  "v": 1,
  "kind": "component",
  "sha256": "1138f61aa90e556814b09468f9e9dba2089666d93f50f9290a3e37bb65971ce1",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "3ax_OHPXdXMGY0dbUPrDd2Xo0W_0hCaTNpzxqGhbgJa3nArIKjyOFP5U5-JWdhsckl7KNxZiw9tlAc8AlXMNDw"
}
