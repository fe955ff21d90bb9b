{
  "v": 1,
  "kind": "component",
  "sha256": "8228eb5fcc691942063b91e4ff1ec0d4063a3633ff647fef9ff441d95615e5e9",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "CGPy5LWG2PSeRPP6JIYGd9WX9-fe-M-fFH8e5eROsjqxPXwB4qU7-k8wLCgUE6sZqquY6iRgGfnRx-ezrR_4Aw"
}
