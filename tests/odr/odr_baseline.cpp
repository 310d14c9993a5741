#include "odr_unit.hpp"
OdrResult run_baseline() {
  return run_unit();
}
