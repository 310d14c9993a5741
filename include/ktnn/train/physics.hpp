#pragma once
/// \file Physics-informed training: a loss that contains the network's
/// derivatives with respect to its inputs.
///
///   loss = residual_weight * mean over interior points of r^2
///        + boundary_weight * mean over boundary points and outputs of (u - g)^2
///        + data_weight     * mean over data points and outputs of (u - d)^2
///
/// where r = residual(point) is the user's PDE residual, a device functor of
/// the point, the outputs u, their gradients and their Laplacians. The
/// residual's own derivatives (what the backward pass needs from it) come
/// from evaluating it once on first-order Jets, so the user writes only the
/// equation, templated on its scalar type:
///
///   struct Poisson {
///     template <class S>
///     KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
///       return -p.laplacian[0] - source(p.x[0], p.x[1]);
///     }
///   };
///
/// It may also return a Kokkos::Array<S, R> of R residuals (a system of
/// equations); their squares are summed.
///
/// The interior term goes through InputDerivatives (the batched Taylor pass
/// and its backward), the boundary and data terms through the model's own
/// forward and backward; all three add into the one gradient arena, then the
/// optimizer takes one step. Nothing waits for the device.

#include <ktnn/core/error.hpp>
#include <ktnn/core/jet.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/derivatives.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/train/step.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <type_traits>
#include <utility>

namespace ktnn {

/// What a residual functor sees at one interior point. S is the scalar the
/// functor is evaluated with (the model's type, or a Jet of it).
template <class S, int In, int Out>
struct PointDerivatives {
  using scalar_type = std::remove_cv_t<decltype(value_of(std::declval<S>()))>;
  scalar_type x[In];    ///< the point
  S u[Out];             ///< the network's outputs there
  S gradient[Out][In];  ///< du_o / dx_k
  S laplacian[Out];     ///< sum over k of d2u_o / dx_k2
};

/// Weights of the terms of a physics-informed loss.
struct PhysicsOptions {
  double residual_weight = 1;
  double boundary_weight = 1;
  double data_weight = 1;
};

/// The loss of one physics-informed step, term by term (means, unweighted)
/// and in total (weighted, what the gradient is of).
struct PhysicsSums {
  double loss = 0;
  double residual = 0;  ///< mean over interior points of the squared residual
  double boundary = 0;  ///< mean squared boundary misfit
  double data = 0;      ///< mean squared data misfit
};

namespace detail {
template <class R>
inline constexpr int residual_count = 1;
template <class S, std::size_t R>
inline constexpr int residual_count<Kokkos::Array<S, R>> = int(R);

/// The interior term at point i: the squared residuals summed into the
/// reduction (loss, count), and their derivatives with respect to the Taylor
/// outputs, times `scale`, written into the adjoints.
template <int In, int Out, class T, class Residual, class Points, class Rows, class Jacobian>
struct ResidualTerm {
  static constexpr int m = Out * (In + 2);  // directions: u, then du/dx, then the Laplacians
  using J = Jet<T, m, 1>;
  Residual residual;
  Points points;
  Rows u;
  Jacobian grad;
  Rows lap;
  Rows u_bar;
  Jacobian grad_bar;
  Rows lap_bar;
  T scale;

  KOKKOS_FUNCTION void operator()(int i, LossSums& s) const {
    PointDerivatives<J, In, Out> p;
    for (int k = 0; k < In; ++k) p.x[k] = points(i, k);
    for (int o = 0; o < Out; ++o) {
      p.u[o] = J::variable(u(i, o), o);
      for (int k = 0; k < In; ++k) p.gradient[o][k] = J::variable(grad(i, o, k), Out + o * In + k);
      p.laplacian[o] = J::variable(lap(i, o), Out + Out * In + o);
    }
    auto const r = residual(p);
    // dL/d(direction) = scale * sum over residuals c of r_c dr_c/d(direction)
    T adjoint[m] = {};
    double squares = 0;
    auto add = [&](J const& rc) {
      squares += double(rc.v) * double(rc.v);
      for (int d = 0; d < m; ++d) adjoint[d] += scale * rc.v * rc.d[d];
    };
    if constexpr (is_jet_v<std::remove_cv_t<decltype(r)>>)
      add(r);
    else
      for (std::size_t c = 0; c < r.size(); ++c) add(r[c]);
    for (int o = 0; o < Out; ++o) {
      u_bar(i, o) = adjoint[o];
      for (int k = 0; k < In; ++k) grad_bar(i, o, k) = adjoint[Out + o * In + k];
      lap_bar(i, o) = adjoint[Out + Out * In + o];
    }
    s.loss += squares;
    s.count += 1;
  }
};

/// The interior term over all points into `sums`, its adjoints scaled by
/// `weight / points` (see ResidualTerm).
template <int In, int Out, class ExecSpace, class T, class Residual, class Points, class Rows,
          class Jacobian>
void residual_term(ExecSpace const& exec, Residual const& residual, Points const& points,
                   Rows const& u, Jacobian const& grad, Rows const& lap, Rows const& u_bar,
                   Jacobian const& grad_bar, Rows const& lap_bar, T weight,
                   Kokkos::View<LossSums, typename ExecSpace::memory_space> const& sums) {
  int const n = int(points.extent(0));
  T const scale = n > 0 ? T(2) * weight / T(n) : T(0);
  Kokkos::parallel_reduce(
      "ktnn::PhysicsInformed::residual", Kokkos::RangePolicy<ExecSpace>(exec, 0, n),
      ResidualTerm<In, Out, T, Residual, Points, Rows, Jacobian>{.residual = residual,
                                                                 .points = points,
                                                                 .u = u,
                                                                 .grad = grad,
                                                                 .lap = lap,
                                                                 .u_bar = u_bar,
                                                                 .grad_bar = grad_bar,
                                                                 .lap_bar = lap_bar,
                                                                 .scale = scale},
      Kokkos::Sum<LossSums, typename ExecSpace::memory_space>(sums));
}

/// A value term at point i: (u - target)^2 summed over the outputs / width
/// into the reduction, and scale * (u - target) into `gradient`.
template <class T, class Targets>
struct ValueTerm {
  Matrix<T const> u;
  Targets targets;
  Matrix<T> gradient;
  int width;
  T scale;

  KOKKOS_FUNCTION void operator()(int i, LossSums& s) const {
    double sum = 0;
    for (int j = 0; j < width; ++j) {
      T const diff = u(i, j) - T(targets(i, j));
      gradient(i, j) = scale * diff;
      sum += double(diff) * double(diff);
    }
    s.loss += sum / width;
    s.count += 1;
  }
};

/// A value term: (u - target)^2 summed per point over the outputs / Out into
/// `sums`, and weight * 2 (u - target) / (points * Out) into `gradient`.
template <class ExecSpace, class T, class Targets>
void value_term(ExecSpace const& exec, char const* label, Matrix<T const> u, Targets const& targets,
                Matrix<T> gradient, T weight,
                Kokkos::View<LossSums, typename ExecSpace::memory_space> const& sums) {
  int const n = u.rows, width = u.cols;
  T const scale = n > 0 ? T(2) * weight / (T(n) * T(width)) : T(0);
  Kokkos::parallel_reduce(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n),
      ValueTerm<T, Targets>{
          .u = u, .targets = targets, .gradient = gradient, .width = width, .scale = scale},
      Kokkos::Sum<LossSums, typename ExecSpace::memory_space>(sums));
}

/// The step's PhysicsSums from the three terms' loss sums and the weights.
template <class MemorySpace>
struct CombinePhysicsSums {
  Kokkos::View<LossSums, MemorySpace> residual, boundary, data;
  Kokkos::View<PhysicsSums, MemorySpace> out;
  PhysicsOptions weights;
  bool has_boundary = false;  // a term that did not run left its sums as they were
  bool has_data = false;

  KOKKOS_FUNCTION void operator()(int) const {
    auto mean = [](LossSums const& s) { return s.count > 0 ? s.loss / s.count : 0.0; };
    PhysicsSums s;
    s.residual = mean(residual());
    s.boundary = has_boundary ? mean(boundary()) : 0.0;
    s.data = has_data ? mean(data()) : 0.0;
    s.loss = weights.residual_weight * s.residual + weights.boundary_weight * s.boundary +
             weights.data_weight * s.data;
    out() = s;
  }
};
}  // namespace detail

/// A physics-informed loss of `model`: its Taylor pass, the residual, the
/// weights, and device scalars for the sums. Make it once; train_step uses
/// it every step.
template <class Model, class Residual>
class PhysicsInformed {
 public:
  using T = typename Model::value_type;
  using execution_space = typename Model::execution_space;
  using memory_space = typename Model::memory_space;
  static constexpr int in_features = Model::in_features;
  static constexpr int out_features = Model::out_features;

  PhysicsInformed(Model& model, Residual residual, PhysicsOptions options = {})
      : derivatives_(model),
        residual_(residual),
        options_(options),
        residual_sums_(Kokkos::view_alloc(model.execution(), "ktnn::PhysicsInformed::residual")),
        boundary_sums_(Kokkos::view_alloc(model.execution(), "ktnn::PhysicsInformed::boundary")),
        data_sums_(Kokkos::view_alloc(model.execution(), "ktnn::PhysicsInformed::data")),
        sums_(Kokkos::view_alloc(model.execution(), "ktnn::PhysicsInformed::sums")) {
    validate(options);
  }

  Model& model() const { return derivatives_.model(); }
  PhysicsOptions& options() { return options_; }
  Residual const& residual() const { return residual_; }
  /// The Taylor pass (its value(), gradient() and laplacian() hold the last
  /// interior points' results).
  InputDerivatives<Model>& derivatives() { return derivatives_; }
  /// The last gradient()'s sums (device scalar).
  Kokkos::View<PhysicsSums, memory_space> const& sums() const { return sums_; }

  static void validate(PhysicsOptions const& o) {
    auto check = [](char const* name, double w) {
      if (!(std::isfinite(w) && w >= 0))
        detail::fail("ktnn::PhysicsInformed", "option ", name, " is ", w,
                     "; it must be a finite value >= 0");
    };
    check("residual_weight", o.residual_weight);
    check("boundary_weight", o.boundary_weight);
    check("data_weight", o.data_weight);
  }

  /// The loss's parameter gradient into model().gradients() (written over
  /// what was there) and its sums into sums(): `interior` points (n x
  /// in_features), and optionally boundary points with their values (and
  /// data points with theirs); any layout. An empty View skips a term.
  template <class Interior, class BoundaryX = NoGradient, class BoundaryU = NoGradient,
            class DataX = NoGradient, class DataU = NoGradient>
  void gradient(Interior const& interior, BoundaryX const& boundary_x = {},
                BoundaryU const& boundary_u = {}, DataX const& data_x = {},
                DataU const& data_u = {}) {
    Kokkos::Profiling::ScopedRegion region("ktnn::PhysicsInformed::gradient");
    validate(options_);
    auto const& exec = model().execution();
    derivatives_.forward(interior);
    detail::residual_term<in_features, out_features>(
        exec, residual_, interior, derivatives_.value(), derivatives_.gradient(),
        derivatives_.laplacian(), derivatives_.value_adjoint(), derivatives_.gradient_adjoint(),
        derivatives_.laplacian_adjoint(), T(options_.residual_weight), residual_sums_);
    derivatives_.backward(Accumulate::no);
    bool const has_boundary = value_term("ktnn::PhysicsInformed::boundary", boundary_x, boundary_u,
                                         options_.boundary_weight, boundary_sums_);
    bool const has_data =
        value_term("ktnn::PhysicsInformed::data", data_x, data_u, options_.data_weight, data_sums_);
    Kokkos::parallel_for("ktnn::PhysicsInformed::sums",
                         Kokkos::RangePolicy<execution_space>(exec, 0, 1),
                         detail::CombinePhysicsSums<memory_space>{.residual = residual_sums_,
                                                                  .boundary = boundary_sums_,
                                                                  .data = data_sums_,
                                                                  .out = sums_,
                                                                  .weights = options_,
                                                                  .has_boundary = has_boundary,
                                                                  .has_data = has_data});
  }

 private:
  /// A boundary or data term's loss, gradient (added to the model's) and
  /// sums; false, and nothing launched, where it has no points.
  template <class X, class U>
  bool value_term(char const* label, X const& x, U const& u, double weight,
                  Kokkos::View<LossSums, memory_space> const& sums) {
    if constexpr (std::is_same_v<X, NoGradient>) {
      static_assert(std::is_same_v<U, NoGradient>, "ktnn::PhysicsInformed: values without points");
      return false;
    } else {
      static_assert(Kokkos::is_view_v<U> && U::rank() == 2,
                    "ktnn::PhysicsInformed: boundary and data values are rank-2 Views (points x "
                    "out_features)");
      if (u.extent(0) != x.extent(0) || u.extent(1) != std::size_t(out_features))
        detail::fail(label, x.extent(0), " points but values of ", u.extent(0), "x", u.extent(1),
                     " (expected ", x.extent(0), "x", out_features, ")");
      Model& m = model();
      if (x.extent(0) == 0) return false;
      auto const prediction = m.forward(x);
      detail::value_term(m.execution(), label, Matrix<T const>(as_matrix(prediction)), u,
                         as_matrix(m.output_gradient()), T(weight), sums);
      m.backward(false, Accumulate::yes);
      return true;
    }
  }

  InputDerivatives<Model> derivatives_;
  Residual residual_;
  PhysicsOptions options_;
  Kokkos::View<LossSums, memory_space> residual_sums_, boundary_sums_, data_sums_;
  Kokkos::View<PhysicsSums, memory_space> sums_;
};

template <class Model, class Residual>
PhysicsInformed(Model&, Residual, PhysicsOptions) -> PhysicsInformed<Model, Residual>;
template <class Model, class Residual>
PhysicsInformed(Model&, Residual) -> PhysicsInformed<Model, Residual>;

/// One physics-informed training step: pinn.gradient(...), then the
/// optimizer's step. Returns the step's sums (device scalar, not waited for).
template <class Model, class Residual, class Optimizer, class Interior, class... Terms>
Kokkos::View<PhysicsSums, typename Model::memory_space> const& train_step(
    Model& model, PhysicsInformed<Model, Residual>& pinn, Optimizer& optimizer,
    Interior const& interior, Terms const&... terms) {
  static_assert(check_optimizer_for<Optimizer, Model>(),
                "ktnn::train_step: the optimizer does not meet the ktnn::Optimizer protocol for "
                "this model (see above)");
  static_assert(sizeof...(Terms) == 0 || sizeof...(Terms) == 2 || sizeof...(Terms) == 4,
                "ktnn::train_step: after the interior points come boundary points and values, "
                "then data points and values");
  if (&pinn.model() != &model)
    detail::fail("ktnn::train_step", "the PhysicsInformed loss was made for another model");
  Kokkos::Profiling::ScopedRegion region("ktnn::train_step");
  pinn.gradient(interior, terms...);
  optimizer.step(model.parameters(), model.gradients());
  return pinn.sums();
}

}  // namespace ktnn
