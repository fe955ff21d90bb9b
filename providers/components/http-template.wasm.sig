{
  "v": 1,
  "kind": "component",
  "sha256": "0e402fae599dcf42e62c243613f5d572106f63fb51e349a27f18a3dfd7e28d55",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "cAncEr6aIpPjzk-4O54I-NQtv81l1ugRsZlJCeb4MBpypHqfjXfhJSYIi1E-qaJcCfNqf8-lR5DR-auGQ7QoCw"
}
