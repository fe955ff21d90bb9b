{
  "v": 1,
  "kind": "component",
  "sha256": "70d674d4ea089cb4c447b85bf25bf7a5c5f6af98ef908dd86ab515145cf8c78e",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "359NefwHY3EKzfcGPLq5A08eJP_NQJVjARofOnJJy6eOdDqzVjOvx3sT9eCkJRmkrhltrAJFYXeHmn4YWNEYBQ"
}
