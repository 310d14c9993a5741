#include "odr_unit.hpp"
OdrResult run_native() {
  return run_unit();
}
