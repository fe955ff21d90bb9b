{
  "v": 1,
  "kind": "component",
  "sha256": "a470274eb1fdfe708f6fba59e733a52943fd5c5e06f2ac584e2be4a44f86ce3e",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "44hRU9ZGDbFitqwcMM5NhFvr0lGvHOYZ6K9-U8GjaAbHzeLj3Kxcn6Wsnk-1NdQhup8LOmp8NYyvHpuGH5a2CA"
}
