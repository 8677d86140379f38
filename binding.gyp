{
  "variables": {
    "sanitize%": "0"
  },
  "targets": [
    {
      "target_name": "blockring",
      "sources": [
        "native/kernel/io_uring.cc",
        "native/kernel/eventfd.cc",
        "native/kernel/block_device.cc",
        "native/engine/scheduler.cc",
        "native/engine/engine.cc",
        "native/engine/io_uring_backend.cc",
        "native/engine/null_backend.cc",
        "native/engine/factory.cc",
        "native/binding/errors.cc",
        "native/binding/ring_handle.cc",
        "native/binding/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "conditions": [
        ["sanitize=='1'", {
          "cflags": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"],
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
