{
  "targets": [
    {
      "target_name": "nemo_native",
      "sources": ["src/addon.cc", "src/matmul.cc", "src/ops.cc", "src/topk.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-ffp-contract=fast", "-fexceptions", "<!@(node -p \"process.env.NEMO_NATIVE_CFLAGS ?? '-march=native'\")"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=fast", "<!@(node -p \"process.env.NEMO_NATIVE_CFLAGS ?? '-march=native'\")"]
      }
    }
  ]
}
