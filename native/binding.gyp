{
  # cairn_native: the N-API addon (C, node_api.h only; no npm dependencies, nothing downloaded).
  # Built by `npm install` (package.json "install" script) or `npx node-gyp rebuild --directory native`.
  "targets": [
    {
      "target_name": "cairn_native",
      "sources": [
        "src/addon.c",
        "src/poly1305.c",
        "src/rabin.c",
        "src/sys.c",
        "src/util.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      # -O3, but no -march: the image may run on any x86_64 or arm64 CPU.
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=gnu11"]
      }
    }
  ]
}
