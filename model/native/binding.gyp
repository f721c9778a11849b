{
  "targets": [
    {
      "target_name": "nemo_native",
      "sources": ["src/addon.cc", "src/matmul.cc", "src/ops.cc", "src/topk.cc", "src/probe.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      # --param=avoid-fma-max-bits=0: GCC tuned for AMD Zen (-march=native there) otherwise leaves
      # some loop-carried multiply-adds unfused, so that two code paths over the same numbers
      # (packed and unpacked B, a ragged edge) gave different bits.
      "cflags_cc": ["-O3", "-ffp-contract=fast", "--param=avoid-fma-max-bits=0", "-fexceptions", "<!@(node -p \"process.env.NEMO_NATIVE_CFLAGS ?? '-march=native'\")"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=fast", "<!@(node -p \"process.env.NEMO_NATIVE_CFLAGS ?? '-march=native'\")"]
      }
    }
  ]
}
