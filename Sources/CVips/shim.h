#ifndef DEPOT_CVIPS_SHIM_H
#define DEPOT_CVIPS_SHIM_H
#include <vips/vips.h>
#endif
