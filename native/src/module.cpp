// pybind11 bindings of emo3d's native core. Input checking that needs numpy (dtype conversion,
// NaN) lives in native/__init__.py; these bindings re-check shapes, dtypes and contiguity so that
// no call can read or write out of bounds, and release the GIL around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cpu_dispatch.hpp"
#include "py_checks.hpp"
#include "deform.hpp"
#include "emo3d_schema.h"
#include "render_py.hpp"

namespace py = pybind11;

namespace {

using emo3d::pycheck::array_data;
using emo3d::pycheck::checked_csr;
using emo3d::pycheck::require;

py::array_t<float> deform_dense_py(const py::array& base, const py::array& deltas, const py::array& weights,
                                   int threads) {
    const float* b = array_data<float>(base, "base", 2);
    const float* d = array_data<float>(deltas, "deltas", 3);
    const float* w = array_data<float>(weights, "weights", 2);
    const auto V = base.shape(0), T = deltas.shape(0), F = weights.shape(0);
    require(base.shape(1) == 3, "base must be [V, 3]");
    require(deltas.shape(1) == V && deltas.shape(2) == 3, "deltas must be [T, V, 3] with the V of base");
    require(weights.shape(1) == T, "weights must be [F, T] with the T of deltas");
    py::array_t<float> out({F, V, static_cast<py::ssize_t>(3)});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        emo3d::deform_dense(b, d, w, o, V, T, F, threads);
    }
    return out;
}

py::array_t<float> deform_sparse_py(const py::array& base, const py::array& offsets, const py::array& indices,
                                    const py::array& values, const py::array& weights, int threads) {
    const float* b = array_data<float>(base, "base", 2);
    require(base.shape(1) == 3, "base must be [V, 3]");
    const auto V = base.shape(0);
    const auto csr = checked_csr(offsets, indices, values, V);
    const auto T = csr.n_targets;
    const float* w = array_data<float>(weights, "weights", 2);
    const auto F = weights.shape(0);
    require(weights.shape(1) == T, "weights must be [F, T] with T = len(offsets) - 1");
    py::array_t<float> out({F, V, static_cast<py::ssize_t>(3)});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        emo3d::deform_sparse(b, csr.offsets, csr.indices, csr.values, w, o, V, T, F, threads);
    }
    return out;
}

// Which clone of the EMO3D_HOT kernels this process runs (the ifunc resolvers make the same choice).
const char* kernel_isa() {
#if EMO3D_MULTIVERSIONED
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3" : "baseline";
#else
    return "baseline";
#endif
}

py::tuple names(const char* const* arr, int n) {
    py::tuple t(n);
    for (int i = 0; i < n; ++i) t[i] = py::str(arr[i]);
    return t;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "emo3d native core: blendshape deformation and rendering";
    m.def("deform_dense", &deform_dense_py, py::arg("base"), py::arg("deltas"), py::arg("weights"),
          py::arg("threads") = 0, "V[f] = base + sum_t weights[f, t] * deltas[t]; returns [F, V, 3] float32");
    m.def("deform_sparse", &deform_sparse_py, py::arg("base"), py::arg("offsets"), py::arg("indices"),
          py::arg("values"), py::arg("weights"), py::arg("threads") = 0,
          "Sparse (CSR per target) version of deform_dense");
    m.def("kernel_isa", &kernel_isa,
          "'x86-64-v3' when the hot kernels run their AVX2/FMA clone, else 'baseline' (see cpu_dispatch.hpp)");
    m.attr("MULTIVERSIONED") = bool(EMO3D_MULTIVERSIONED);
    m.attr("MEDIAPIPE_NAMES") = names(emo3d::kMediaPipeNames, emo3d::kMediaPipeCount);
    m.attr("MODEL_NAMES") = names(emo3d::kModelNames, emo3d::kModelCount);
    m.attr("ARKIT_NAMES") = names(emo3d::kARKitNames, emo3d::kARKitCount);
    m.attr("LIVELINK_NAMES") = names(emo3d::kLiveLinkNames, emo3d::kLiveLinkCount);
    m.attr("EMOTIONS") = names(emo3d::kEmotionNames, emo3d::kEmotionCount);
    py::list mirror;
    for (int i = 0; i < emo3d::kModelCount; ++i) mirror.append(emo3d::kModelMirror[i]);
    m.attr("MODEL_MIRROR") = mirror;
    emo3d::register_render(m);
}
