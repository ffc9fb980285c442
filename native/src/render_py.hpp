// pybind11 registration of the renderer (called once from module.cpp).
#pragma once
#include <pybind11/pybind11.h>

namespace emo3d {
void register_render(pybind11::module_& m);
}
