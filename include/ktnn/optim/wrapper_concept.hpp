#pragma once
/// \file The optimizer wrapper protocol: what Scheduled and Clipped share
/// (and a new wrapper needs). A wrapper is an optimizer itself
/// (optim/optimizer_concept.hpp) that steps another one it holds:
///
///   inner_optimizer                 the wrapped optimizer's type, an Optimizer
///   optimizer()                     the wrapped optimizer (inner_optimizer&)
///
/// ForwardingOptimizer (optim/forwarding.hpp) supplies both, and forwards
/// the rest of the protocol but step.

#include <ktnn/optim/optimizer_concept.hpp>

#include <concepts>

namespace ktnn {

/// One requirement of the wrapper protocol each, so check_optimizer_wrapper
/// can say which is missing.
namespace detail::wrapper_requirements {
template <class W>
concept names_inner = requires { typename W::inner_optimizer; };
template <class W>
concept exposes_inner = names_inner<W> && requires(W const& w) {
  { w.optimizer() } -> std::same_as<typename W::inner_optimizer&>;
};
template <class W>
concept inner_is_optimizer = names_inner<W> && Optimizer<typename W::inner_optimizer>;
}  // namespace detail::wrapper_requirements

/// An optimizer that wraps another one (see the file comment).
template <class W>
concept OptimizerWrapper = Optimizer<W> && detail::wrapper_requirements::exposes_inner<W> &&
                           detail::wrapper_requirements::inner_is_optimizer<W>;

/// Checks the protocol one requirement at a time (check_optimizer for the
/// wrapper itself first), so the compiler's first error says which member
/// is missing.
template <class W>
constexpr bool check_optimizer_wrapper() {
  namespace r = detail::wrapper_requirements;
  check_optimizer<W>();
  static_assert(r::names_inner<W>,
                "ktnn::OptimizerWrapper: missing `using inner_optimizer` (the wrapped "
                "optimizer's type)");
  static_assert(r::exposes_inner<W>,
                "ktnn::OptimizerWrapper: missing `inner_optimizer& optimizer() const`");
  static_assert(r::inner_is_optimizer<W>,
                "ktnn::OptimizerWrapper: the wrapped optimizer is not a ktnn::Optimizer");
  return OptimizerWrapper<W>;
}

}  // namespace ktnn
