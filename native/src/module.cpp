// pybind11 bindings of emo3d's native core. Input checking that needs numpy (dtype conversion,
// NaN) lives in native/__init__.py; these bindings re-check shapes, dtypes and contiguity so that
// no call can read or write out of bounds, and release the GIL around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "cpu_dispatch.hpp"
#include "deform.hpp"
#include "emo3d_schema.h"
#include "render_py.hpp"

namespace py = pybind11;
using f32 = py::array_t<float, 0>;  // no forcecast: wrong dtypes are refused, not silently copied

namespace {

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

template <class T>
const T* cdata(const py::array& a, const char* what, int ndim) {
    require(a.ndim() == ndim, std::string(what) + " must have " + std::to_string(ndim) + " dimensions, got " +
                                  std::to_string(a.ndim()));
    require(py::isinstance<py::array_t<T>>(a) && a.dtype().is(py::dtype::of<T>()),
            std::string(what) + " has the wrong dtype (expected " + std::string(py::str(py::dtype::of<T>())) + ")");
    require(a.flags() & py::array::c_style, std::string(what) + " must be C-contiguous");
    return static_cast<const T*>(a.data());
}

py::array_t<float> deform_dense_py(const py::array& base, const py::array& deltas, const py::array& weights,
                                   int threads) {
    const float* b = cdata<float>(base, "base", 2);
    const float* d = cdata<float>(deltas, "deltas", 3);
    const float* w = cdata<float>(weights, "weights", 2);
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
    const float* b = cdata<float>(base, "base", 2);
    const std::int64_t* off = cdata<std::int64_t>(offsets, "offsets", 1);
    const std::int32_t* idx = cdata<std::int32_t>(indices, "indices", 1);
    const float* val = cdata<float>(values, "values", 2);
    const float* w = cdata<float>(weights, "weights", 2);
    const auto V = base.shape(0), T = offsets.shape(0) - 1, F = weights.shape(0), K = indices.shape(0);
    require(base.shape(1) == 3, "base must be [V, 3]");
    require(T >= 0, "offsets must have T+1 entries");
    require(weights.shape(1) == T, "weights must be [F, T] with T = len(offsets) - 1");
    require(values.shape(0) == K && values.shape(1) == 3, "values must be [K, 3] with K = len(indices)");
    require(off[0] == 0 && off[T] == K, "offsets must start at 0 and end at len(indices)");
    for (py::ssize_t t = 0; t < T; ++t) require(off[t] <= off[t + 1], "offsets must be non-decreasing");
    for (py::ssize_t k = 0; k < K; ++k) require(idx[k] >= 0 && idx[k] < V, "indices must lie in [0, V)");
    py::array_t<float> out({F, V, static_cast<py::ssize_t>(3)});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        emo3d::deform_sparse(b, off, idx, val, w, o, V, T, F, threads);
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
