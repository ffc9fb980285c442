// Bindings of emo3d::MeshRenderer as native._core.Renderer. native/render.py validates values
// (finite, ranges); these re-check shapes, dtypes and index bounds so no call reads out of bounds.
#include "render_py.hpp"

#include <pybind11/numpy.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "deform.hpp"
#include "deform_runs.hpp"
#include "py_checks.hpp"
#include "render.hpp"

namespace py = pybind11;

namespace {

using emo3d::pycheck::array_data;
using emo3d::pycheck::checked_csr;
using emo3d::pycheck::require;

class PyRenderer {
public:
    PyRenderer(const py::array& verts, const py::array& tris, const py::array& offsets, const py::array& indices,
               const py::array& values, const py::object& uvs, const py::object& texture, const py::object& colors,
               int width, int height, int ssaa, const py::array& center, double dist, double tan_half,
               double ambient, double diffuse, double specular, const py::array& background, int threads,
               const py::object& cull) {
        const float* v = array_data<float>(verts, "vertices", 2);
        const auto V = verts.shape(0);
        require(verts.shape(1) == 3 && V >= 1, "vertices must be [V, 3]");
        const std::int32_t* t = array_data<std::int32_t>(tris, "triangles", 2);
        require(tris.shape(1) == 3, "triangles must be [F, 3]");
        const auto F = tris.shape(0);
        bool ok_tri = true;
        for (py::ssize_t i = 0; i < F * 3; ++i) ok_tri &= t[i] >= 0 && t[i] < V;
        require(ok_tri, "triangles index out of range");
        const auto csr = checked_csr(offsets, indices, values, V);
        const float* uv = nullptr;
        const std::uint8_t* tex = nullptr;
        const float* col = nullptr;
        int tw = 0, th = 0;
        if (!texture.is_none()) {
            require(!uvs.is_none(), "a texture needs uvs");
            uvs_ = py::array(uvs);
            tex_ = py::array(texture);
            uv = array_data<float>(uvs_, "uvs", 2);
            require(uvs_.shape(0) == V && uvs_.shape(1) == 2, "uvs must be [V, 2]");
            tex = array_data<std::uint8_t>(tex_, "texture", 3);
            require(tex_.shape(2) == 3 && tex_.shape(0) >= 1 && tex_.shape(1) >= 1, "texture must be [H, W, 3]");
            th = int(tex_.shape(0));
            tw = int(tex_.shape(1));
        } else if (!colors.is_none()) {
            col_ = py::array(colors);
            col = array_data<float>(col_, "colors", 2);
            require(col_.shape(0) == V && col_.shape(1) == 3, "colors must be [V, 3]");
        }
        require(width >= 1 && height >= 1 && ssaa >= 1 && ssaa <= 16, "bad image size or ssaa");
        const float* c = array_data<float>(center, "center", 1);
        require(center.shape(0) == 3, "center must have 3 values");
        const float* bg = array_data<float>(background, "background", 1);
        require(background.shape(0) == 3, "background must have 3 values");
        const std::uint8_t* cu = nullptr;
        py::array cull_arr;
        if (!cull.is_none()) {
            cull_arr = py::array(cull);
            cu = array_data<std::uint8_t>(cull_arr, "cull", 1);
            require(cull_arr.shape(0) == F, "cull must be [F] uint8 (one flag per triangle)");
        }
        emo3d::RenderConfig cfg;
        cfg.width = width;
        cfg.height = height;
        cfg.ssaa = ssaa;
        for (int k = 0; k < 3; ++k) {
            cfg.center[k] = c[k];
            cfg.background[k] = bg[k];
        }
        cfg.dist = dist;
        cfg.tan_half = tan_half;
        cfg.ambient = ambient;
        cfg.diffuse = diffuse;
        cfg.specular = specular;
        cfg.threads = threads;
        r_ = std::make_unique<emo3d::MeshRenderer>(v, V, t, F, csr.offsets, csr.indices, csr.values, csr.n_targets, uv,
                                                    tex, tw, th, col, cu, cfg);
        uvs_ = py::array();
        tex_ = py::array();
        col_ = py::array();
    }

    py::array_t<std::uint8_t> render(const py::array& weights, const py::array& rot, const py::array& light) {
        const float* w = array_data<float>(weights, "weights", 2);
        require(weights.shape(1) == r_->n_targets(), "weights must be [F, T] with the rig's T");
        const float* R = check_rot(rot);
        const float* L = check_light(light);
        const auto F = weights.shape(0);
        auto out = alloc(F);
        std::uint8_t* o = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            r_->render(w, F, R, L, o);
        }
        return out;
    }

    bool set_wide_kernels(bool on, bool avx512) { return r_->set_wide_kernels(on, avx512); }
    bool avx512_kernels() const { return r_->avx512_kernels(); }

    py::array_t<std::uint8_t> render_vertices(const py::array& verts, const py::array& rot, const py::array& light) {
        const float* v = array_data<float>(verts, "vertices", 3);
        require(verts.shape(1) == r_->n_vertices() && verts.shape(2) == 3, "vertices must be [F, V, 3] with the rig's V");
        const float* R = check_rot(rot);
        const float* L = check_light(light);
        const auto F = verts.shape(0);
        auto out = alloc(F);
        std::uint8_t* o = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            r_->render_vertices(v, F, R, L, o);
        }
        return out;
    }

private:
    const float* check_rot(const py::array& rot) {
        const float* R = array_data<float>(rot, "rotation", 2);
        require(rot.shape(0) == 3 && rot.shape(1) == 3, "rotation must be [3, 3]");
        return R;
    }
    const float* check_light(const py::array& light) {
        const float* L = array_data<float>(light, "light", 1);
        require(light.shape(0) == 3, "light must have 3 values");
        return L;
    }
    py::array_t<std::uint8_t> alloc(py::ssize_t F) {
        const auto& c = r_->config();
        return py::array_t<std::uint8_t>({F, static_cast<py::ssize_t>(c.height), static_cast<py::ssize_t>(c.width),
                                          static_cast<py::ssize_t>(3)});
    }
    std::unique_ptr<emo3d::MeshRenderer> r_;
    py::array uvs_, tex_, col_;
};

// A rig's sparse deltas, checked once here (so each call skips the per-index bounds check) and
// kept in run-length form (deform_runs.hpp).
class PySparseDeformer {
public:
    PySparseDeformer(const py::array& base, const py::array& offsets, const py::array& indices,
                     const py::array& values, int max_gap) {
        require(max_gap >= 0 && max_gap <= 1024, "max_gap must be in [0, 1024], got " + std::to_string(max_gap));
        const float* b = array_data<float>(base, "base", 2);
        require(base.shape(1) == 3, "base must be [V, 3]");
        V_ = base.shape(0);
        const auto csr = checked_csr(offsets, indices, values, V_);
        T_ = csr.n_targets;
        base_.assign(b, b + V_ * 3);
        runs_ = emo3d::RunDeltas::from_csr(csr.offsets, csr.indices, csr.values, T_, V_, max_gap);
    }
    py::ssize_t n_runs() const { return static_cast<py::ssize_t>(runs_.start.size()); }
    py::ssize_t stored_vertices() const { return static_cast<py::ssize_t>(runs_.stored_vertices()); }
    py::array_t<float> deform(const py::array& weights, int threads, const py::object& out_obj) {
        const float* w = array_data<float>(weights, "weights", 2);
        require(weights.shape(1) == T_, "weights must be [F, T] with the rig's T");
        const auto F = weights.shape(0);
        py::array_t<float> out;
        if (out_obj.is_none()) {
            out = py::array_t<float>({F, V_, static_cast<py::ssize_t>(3)});
        } else {
            out = py::reinterpret_borrow<py::array_t<float>>(out_obj);
            require(py::isinstance<py::array_t<float, 0>>(out_obj) && out.ndim() == 3 && out.shape(0) == F &&
                        out.shape(1) == V_ && out.shape(2) == 3 && (out.flags() & py::array::c_style) && out.writeable(),
                    "out must be a writeable C-contiguous float32 array [F, V, 3]");
        }
        float* o = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            emo3d::deform_runs(base_.data(), runs_, w, o, F, threads);
        }
        return out;
    }

private:
    py::ssize_t V_ = 0, T_ = 0;
    std::vector<float> base_;
    emo3d::RunDeltas runs_;
};

}  // namespace

namespace emo3d {
void register_render(py::module_& m) {
    py::class_<PyRenderer>(m, "Renderer", "Software rasteriser for one blendshape rig (see native/render.py)")
        .def(py::init<const py::array&, const py::array&, const py::array&, const py::array&, const py::array&,
                      const py::object&, const py::object&, const py::object&, int, int, int, const py::array&,
                      double, double, double, double, double, const py::array&, int, const py::object&>(),
             py::arg("vertices"), py::arg("triangles"), py::arg("offsets"), py::arg("indices"), py::arg("values"),
             py::arg("uvs"), py::arg("texture"), py::arg("colors"), py::arg("width"), py::arg("height"),
             py::arg("ssaa"), py::arg("center"), py::arg("dist"), py::arg("tan_half"), py::arg("ambient"),
             py::arg("diffuse"), py::arg("specular"), py::arg("background"), py::arg("threads"),
             py::arg("cull") = py::none())
        .def("render", &PyRenderer::render, py::arg("weights"), py::arg("rotation"), py::arg("light"),
             "weights [F, T] float32 -> uint8 [F, H, W, 3]")
        .def("render_vertices", &PyRenderer::render_vertices, py::arg("vertices"), py::arg("rotation"),
             py::arg("light"), "vertices [F, V, 3] float32 -> uint8 [F, H, W, 3]")
        .def("_set_wide_kernels", &PyRenderer::set_wide_kernels, py::arg("on"), py::arg("avx512") = true,
             "tests: the 256-bit kernels (AVX2, the default on an x86-64-v3 CPU: ssaa-2 shading eight samples "
             "at a time, narrow triangles' coverage four) or the SSE ones; avx512: on an x86-64-v4 CPU also the "
             "512-bit narrow-triangle kernel (eight samples per compare); returns the 256-bit setting in force")
        .def("_avx512_kernels", &PyRenderer::avx512_kernels,
             "whether the 512-bit narrow-triangle kernel runs (an x86-64-v4 CPU, _set_wide_kernels)");
    py::class_<PySparseDeformer>(m, "SparseDeformer", "A rig's CSR deltas, validated once; deform(weights [F, T], threads)")
        .def(py::init<const py::array&, const py::array&, const py::array&, const py::array&, int>(), py::arg("base"),
             py::arg("offsets"), py::arg("indices"), py::arg("values"), py::arg("max_gap") = 8,
             "max_gap: unmoved vertices (zero deltas) a run may bridge; longer runs, more zeros")
        .def("deform", &PySparseDeformer::deform, py::arg("weights"), py::arg("threads") = 0, py::arg("out") = py::none(),
             "weights [F, T] float32 -> [F, V, 3] float32 (written into out when given)")
        .def_property_readonly("n_runs", &PySparseDeformer::n_runs, "runs of consecutive moved vertices, all targets")
        .def_property_readonly("stored_vertices", &PySparseDeformer::stored_vertices,
                               "vertex deltas stored in the runs (moved vertices plus the zero-filled gaps)");
}
}  // namespace emo3d
