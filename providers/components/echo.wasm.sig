{
  "v": 1,
  "kind": "component",
  "sha256": "cf358c53048e4a10eb6fd9ba2006e4f2587983ecb47b273b28495f95736933ed",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "c2ZaqjxuO7U7pmg1L_gxUE49U_KoL3he3fpd1QTP9t0TiCsxTkRCbvkEFYLfuYaQHcoAnGPbC5fB-goXy0upCg"
}
