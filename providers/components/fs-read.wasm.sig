{
  "v": 1,
  "kind": "component",
  "sha256": "e1d703f42cea991ea256cd376f11bedc02b01bff98d3a0317aab3e99b15a4271",
  "publisher": "b-WLcheFjtn6fvvf_DSlafyAljP2-a5T61KtzaO33dw",
  "publicKey": "AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY",
  "signature": "6g5Z0V8GYPOnlnCQdzJUqjnTJeYt1FB_ADlBp6I1TpCe6pvWS2JgV4iK9fGOSQGLRP0Vmr8WvPMkcugdqVlgAQ"
}
