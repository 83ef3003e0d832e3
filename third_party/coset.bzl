"""Build macros: our warning flags and the link flags of the Debian libraries we use."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

# -ffp-contract=off: the AVX2 and portable builds of a kernel must give bit-identical results, so
# the compiler may not fuse a*b+c in one build and not in the other.
COSET_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wnon-virtual-dtor",
    "-ffp-contract=off",
    "-O3",
]

# The CUDA sources and tests built on the CUDA emulation (kernels/cuda_emulation.h) as C++.
CUDA_EMULATION_COPTS = [
    "-DCOSET_CUDA_EMULATION",
    "-Wno-unknown-pragmas",  # nvcc's #pragma unroll
    # The kernels load a chunk's values, or a query's, only where they use them (a zero block, a
    # missing query): under the same condition, which GCC does not follow through the loops.
    "-Wno-maybe-uninitialized",
]

# Flags for the translation units compiled a second time for AVX2 (runtime dispatch picks them).
AVX2_COPTS = ["-mavx2", "-mfma", "-mbmi2"]

# ... and a third time for AVX-512 (F/BW/VL/DQ + VBMI byte permutes; core/simd/dispatch.cc detects
# exactly these).
AVX512_COPTS = AVX2_COPTS + [
    "-mavx512f",
    "-mavx512bw",
    "-mavx512vl",
    "-mavx512dq",
    "-mavx512vbmi",
]

# nvcc (kernels/): C++17, warnings as errors, no fused multiply-add (the CPU build's
# -ffp-contract=off: the GPU must produce the CPU codec's floats), code for sm_80 and sm_90 plus
# compute_90 PTX for later GPUs.
NVCC_FLAGS = [
    "-O3",
    "-std=c++17",
    "-fmad=false",
    "-Werror all-warnings",
    "-Xcompiler -Wall,-Wextra,-Werror,-fPIC",
    "-gencode arch=compute_80,code=sm_80",
    "-gencode arch=compute_90,code=[sm_90,compute_90]",
    # Every kernel is compiled per chunk dimension, symbol width and query count (kernels/): the
    # fatbinary compressed for size is 1.2 MiB instead of 10 (the device check's bundle carries
    # three binaries with it); the driver inflates it once, when the module loads.
    "--compress-mode=size",
]

ABSL_LINKOPTS = [
    "-Wl,--as-needed",
    "-labsl_statusor",
    "-labsl_status",
    "-labsl_strerror",
    "-labsl_cord",
    "-labsl_cordz_info",
    "-labsl_cord_internal",
    "-labsl_cordz_functions",
    "-labsl_cordz_handle",
    "-labsl_str_format_internal",
    "-labsl_synchronization",
    "-labsl_graphcycles_internal",
    "-labsl_stacktrace",
    "-labsl_symbolize",
    "-labsl_debugging_internal",
    "-labsl_demangle_internal",
    "-labsl_malloc_internal",
    "-labsl_time",
    "-labsl_civil_time",
    "-labsl_time_zone",
    "-labsl_strings",
    "-labsl_strings_internal",
    "-labsl_int128",
    "-labsl_throw_delegate",
    "-labsl_raw_logging_internal",
    "-labsl_log_severity",
    "-labsl_base",
    "-labsl_spinlock_wait",
    "-lpthread",
]

GTEST_LINKOPTS = ["-lgmock", "-lgtest", "-lgtest_main", "-lpthread"]

BENCHMARK_LINKOPTS = ["-lbenchmark", "-lpthread"]

OPENBLAS_LINKOPTS = ["-lopenblas"]

# gRPC 1.51 + protobuf 3.21 from Debian (pkg-config grpc++ protobuf, without the absl list, which
# ABSL_LINKOPTS carries), plus reflection for grpc_cli and friends.
GRPC_LINKOPTS = [
    "-Wl,--as-needed",
    "-lgrpc++_reflection",
    "-lgrpc++",
    "-lgrpc",
    "-laddress_sorting",
    "-lre2",
    "-lupb",
    "-lcares",
    "-lz",
    "-lgpr",
    "-lssl",
    "-lcrypto",
    "-lprotobuf",
    "-latomic",
    "-lrt",
]

PROMETHEUS_LINKOPTS = ["-lprometheus-cpp-pull", "-lprometheus-cpp-core"]

SYSTEMD_LINKOPTS = ["-lsystemd"]

# Debian's LibTorch 1.13 (libtorch-dev). Its headers warn under our flags, so torch code gets
# -w for them via -isystem and is otherwise compiled with the usual warnings.
TORCH_COPTS = [
    "-isystem/usr/include/torch/csrc/api/include",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    # As the pip build (torch_ext/setup.py): at -O2 GCC 12 vectorizes only loops that need no
    # alias check, which left the hook's bucket loops scalar.
    "-O3",
    "-ffp-contract=off",
    "-D_GLIBCXX_USE_CXX11_ABI=1",
]

TORCH_LINKOPTS = ["-ltorch", "-ltorch_cpu", "-lc10"]

def coset_cc_library(name, copts = [], linkopts = [], **kwargs):
    cc_library(
        name = name,
        copts = COSET_COPTS + copts,
        linkopts = ABSL_LINKOPTS + linkopts,
        **kwargs
    )

def coset_cc_binary(name, copts = [], linkopts = [], **kwargs):
    cc_binary(
        name = name,
        copts = COSET_COPTS + copts,
        linkopts = ABSL_LINKOPTS + linkopts,
        **kwargs
    )

def coset_cc_test(name, copts = [], linkopts = [], **kwargs):
    cc_test(
        name = name,
        copts = COSET_COPTS + copts,
        linkopts = ABSL_LINKOPTS + GTEST_LINKOPTS + linkopts,
        **kwargs
    )

def coset_cc_benchmark(name, copts = [], linkopts = [], tags = [], **kwargs):
    cc_binary(
        name = name,
        testonly = True,
        copts = COSET_COPTS + copts,
        linkopts = ABSL_LINKOPTS + BENCHMARK_LINKOPTS + linkopts,
        tags = tags + ["benchmark"],
        **kwargs
    )

def coset_fuzz_target(name, srcs, deps = [], linkopts = [], **kwargs):
    """A libFuzzer target and the replay test of its checked-in corpus (corpus/<name>/).

    <name>: the libFuzzer binary, built only by scripts/fuzz.sh (clang-14, --config=fuzz, its own
    output base), hence tagged manual. <name>_replay: a test that runs every corpus file through the
    same entry point with the default compiler (and under --config=asan in scripts/test.sh).
    """
    cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        copts = COSET_COPTS,
        linkopts = ABSL_LINKOPTS + linkopts + ["-fsanitize=fuzzer"],
        deps = deps,
        tags = ["manual"],
        **kwargs
    )
    cc_test(
        name = name + "_replay",
        srcs = srcs,
        copts = COSET_COPTS,
        linkopts = ABSL_LINKOPTS + linkopts,
        deps = deps + ["//tests/fuzz:replay_main"],
        data = native.glob(["corpus/" + name + "/*"]),
        args = ["tests/fuzz/corpus/" + name],
        **kwargs
    )

def coset_cuda_library(name, srcs, hdrs, deps = [], **kwargs):
    """CUDA sources compiled by nvcc (/usr/local/cuda) into a static library, wrapped as a
    cc_library. Bazel 4 has no CUDA rules: a genrule runs nvcc with NVCC_FLAGS; `hdrs` are the
    headers nvcc reads (labels), the first of which is the library's public header."""
    native.genrule(
        name = name + "_nvcc",
        srcs = srcs + hdrs,
        outs = ["lib" + name + "_device.a"],
        cmd = "/usr/local/cuda/bin/nvcc " + " ".join(NVCC_FLAGS) + " -I. -lib " +
              " ".join(["$(location %s)" % s for s in srcs]) + " -o $@",
    )
    # linkstatic: no shared object of this library, so that in tests (which Bazel links against
    # shared objects of our libraries) its references to the static CUDA runtime are resolved in
    # the executable, where libcudart_static.a is linked.
    cc_library(
        name = name,
        srcs = [":lib" + name + "_device.a"],
        hdrs = [hdrs[0]],
        copts = COSET_COPTS,
        linkopts = ABSL_LINKOPTS,
        linkstatic = True,
        deps = deps + ["@cuda//:cudart_static"],
        **kwargs
    )
