{
  "v": 1,
  "kind": "component",
  "sha256": "7461f6dae0e946edecf3b7c3cf86d8c284bf92b12246ba177366a4d79d4e4642",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "LZ5b-RJ_fzA324OncyfZI5kz-6JDnXW9AOWRSBAwo0_ipRZIkelwQUHKDq7EBzNMbPyFMyuwzd99v9uHbUHvAw"
}
