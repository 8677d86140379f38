{
  "targets": [
    {
      "target_name": "blockring",
      "variables": {
        "blockring_sanitize%": "<!(node -p \"process.env.BLOCKRING_SANITIZE || 0\")",
        "blockring_werror%": "<!(node -p \"process.env.BLOCKRING_WERROR || 0\")",
        "blockring_static_runtime%": "<!(node -p \"process.env.BLOCKRING_STATIC_RUNTIME || 0\")"
      },
      "sources": [
        "native/kernel/io_uring.cc",
        "native/kernel/aio.cc",
        "native/kernel/eventfd.cc",
        "native/kernel/block_device.cc",
        "native/kernel/mmap.cc",
        "native/kernel/file.cc",
        "native/kernel/cow_fault.cc",
        "native/kernel/socket.cc",
        "native/kernel/thread.cc",
        "native/engine/scheduler.cc",
        "native/engine/engine.cc",
        "native/engine/write_log.cc",
        "native/format/cluster_map.cc",
        "native/engine/io_uring_backend.cc",
        "native/engine/libaio_backend.cc",
        "native/engine/threads_backend.cc",
        "native/engine/mmap_backend.cc",
        "native/engine/mapping.cc",
        "native/engine/memory_block.cc",
        "native/engine/device_open.cc",
        "native/engine/cow_region.cc",
        "native/engine/null_backend.cc",
        "native/engine/factory.cc",
        "native/vhost/memory_table.cc",
        "native/vhost/virtqueue.cc",
        "native/vhost/blk_request.cc",
        "native/vhost/blk_backend.cc",
        "native/vhost/delegate.cc",
        "native/vhost/server.cc",
        "native/binding/errors.cc",
        "native/binding/values.cc",
        "native/binding/engine_options.cc",
        "native/binding/registered_buffers.cc",
        "native/binding/image_devices.cc",
        "native/binding/record_decode.cc",
        "native/binding/completions.cc",
        "native/binding/ring_handle.cc",
        "native/binding/device_files.cc",
        "native/binding/completion_watch.cc",
        "native/binding/memory.cc",
        "native/binding/seek.cc",
        "native/binding/mapped_region.cc",
        "native/binding/cow_region.cc",
        "native/binding/write_log.cc",
        "native/binding/vhost_user_blk.cc",
        "native/binding/addon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-std=gnu++17"
      ],
      "cflags": [
        "-Wall",
        "-Wextra",
        "-fvisibility=hidden"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-Wall",
        "-Wextra",
        "-fvisibility=hidden"
      ],
      "conditions": [
        [
          "blockring_static_runtime==1",
          {
            "sources": ["native/kernel/glibc_compat.cc"],
            "ldflags": ["-static-libstdc++", "-Wl,--as-needed"]
          }
        ],
        [
          "blockring_werror==1",
          {
            "cflags": ["-Werror"],
            "cflags_cc": ["-Werror"]
          }
        ],
        [
          "blockring_sanitize==1",
          {
            "cflags": [
              "-fsanitize=address,undefined",
              "-fno-omit-frame-pointer",
              "-fno-sanitize-recover=undefined"
            ],
            "cflags_cc": [
              "-fsanitize=address,undefined",
              "-fno-omit-frame-pointer",
              "-fno-sanitize-recover=undefined"
            ],
            "ldflags": [
              "-fsanitize=address,undefined"
            ]
          }
        ]
      ]
    }
  ]
}
