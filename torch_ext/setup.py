"""Builds coset_torch for `pip install ./torch_ext` (pyproject.toml): the Python package and one
shared library holding the torch.ops.coset operators, compiled against whatever torch is installed,
from torch_ext's sources and core's (the same sources Bazel builds; daemon_ops.cc is left out, it
needs gRPC). Run with --no-build-isolation: the build uses the installed torch and setuptools and
downloads nothing.

Core's *_avx2.cc and *_avx512.cc kernels need their own flags (runtime dispatch picks them only on
machines with those instructions); they are compiled first, then linked in as objects, so that
everything else still builds in parallel with ninja."""
import glob
import os
import subprocess

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# The flags of third_party/coset.bzl (COSET_COPTS, AVX2_COPTS, AVX512_COPTS) that change results or
# the ISA.
COMMON_FLAGS = ["-std=c++17", "-O3", "-ffp-contract=off", "-fPIC", "-g0"]
AVX2_FLAGS = ["-mavx2", "-mfma", "-mbmi2"]
AVX512_FLAGS = AVX2_FLAGS + ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vbmi"]
ISA_FLAGS = {"_avx2.cc": AVX2_FLAGS, "_avx512.cc": AVX512_FLAGS}
ABSL = ["absl_status", "absl_statusor", "absl_strings", "absl_str_format", "absl_synchronization", "absl_cord"]


def pkg_config(*args):
    try:
        return subprocess.check_output(["pkg-config", *args, *ABSL], text=True).split()
    except (OSError, subprocess.CalledProcessError):
        return ["-labsl_statusor", "-labsl_status", "-labsl_strings", "-labsl_str_format_internal",
                "-labsl_synchronization", "-labsl_cord"] if args[0] == "--libs" else []


def rel(path):
    return os.path.relpath(path, HERE)


core = sorted(glob.glob(os.path.join(REPO, "core", "*.cc")) + glob.glob(os.path.join(REPO, "core", "simd", "*.cc")))

def isa_flags(source):
    return next((flags for suffix, flags in ISA_FLAGS.items() if source.endswith(suffix)), None)


isa_sources = [s for s in core if isa_flags(s) is not None]
sources = [os.path.join(HERE, "ops.cc"), os.path.join(HERE, "ddp_ops.cc")] + [s for s in core if s not in isa_sources]


class Build(BuildExtension):
    def build_extensions(self):
        objects = []
        os.makedirs(self.build_temp, exist_ok=True)
        for source in isa_sources:
            obj = os.path.join(self.build_temp, os.path.basename(source) + ".o")
            subprocess.check_call(["c++", *COMMON_FLAGS, *isa_flags(source), *pkg_config("--cflags"), f"-I{REPO}",
                                   "-c", source, "-o", obj])
            objects.append(obj)
        for ext in self.extensions:
            ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extensions()


setup(
    packages=["coset_torch"],
    package_dir={"": "python"},
    ext_modules=[
        CppExtension(
            "coset_torch.libcoset_torch",
            [rel(s) for s in sources],
            include_dirs=[REPO],
            extra_compile_args={"cxx": COMMON_FLAGS + pkg_config("--cflags")},
            extra_link_args=pkg_config("--libs"),
        )
    ],
    cmdclass={"build_ext": Build},
)
