{
  "v": 1,
  "kind": "component",
  "sha256": "b72a752b2ec391ca5b4e25445d377016558f40a9b05d47193ebdaff6910d93ad",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "aQj2PafQYBUajujq8uXSsmrnXT72ysg-SqnJMPNBQxYVPgVK1uy9rv-IBlii-3bNV3clKqXO-RekOXgBBiYnCg"
}
