{
  # cairn_native: the N-API addon (C, node_api.h only). Built by `npm install` / `npm ci` (the
  # package.json "install" script) or `node-gyp rebuild --directory native`.
  #
  # The thread-pool kernels (src/blob.c, src/jobs.c, src/readfile.c) need zstd and OpenSSL:
  #  - zstd: the static library that the zstd-napi dependency builds during its own install
  #    (node_modules/zstd-napi/build/Release/zstd.a, headers in deps/zstd/lib), found by
  #    find-zstd.cjs relative to this package. npm installs (and builds) dependencies before it
  #    runs our install script. When it is missing the addon is built without the blob kernels
  #    and exports `blobKernelsMissing` instead (the loader then uses the TypeScript fallback).
  #  - OpenSSL: Node's own headers (<nodedir>/include/node/openssl) and the symbols the node
  #    binary exports; nothing is linked.
  "variables": {
    "zstd_dir%": "<!(node find-zstd.cjs)"
  },
  "targets": [
    {
      "target_name": "cairn_native",
      "sources": [
        "src/addon.c",
        "src/batch.c",
        "src/fastcdc.c",
        "src/kpool.c",
        "src/poly1305.c",
        "src/pread.c",
        "src/mkdirbatch.c",
        "src/rabin.c",
        "src/statbatch.c",
        "src/sys.c",
        "src/util.c",
        "src/writefile.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      # -O3, but no -march: the image may run on any x86_64 or arm64 CPU.
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=gnu11"]
      },
      "conditions": [
        ["zstd_dir!=''", {
          "sources": ["src/blob.c", "src/jobs.c", "src/openwrite.c", "src/readfile.c"],
          "defines": ["CAIRN_HAVE_ZSTD"],
          "include_dirs": ["<(zstd_dir)/deps/zstd/lib"],
          "libraries": ["<(zstd_dir)/build/Release/zstd.a"]
        }, {
          "defines": ["CAIRN_NO_ZSTD"]
        }]
      ]
    }
  ]
}
