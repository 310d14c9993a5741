#pragma once
/// \file The umbrella header: everything a user needs to build and train.

#include <ktnn/version.hpp>

#include <ktnn/core/error.hpp>
#include <ktnn/core/jet.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/core/tensor.hpp>
#include <ktnn/data/dataset.hpp>
#include <ktnn/data/idx.hpp>
#include <ktnn/derivatives.hpp>
#include <ktnn/inference.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/layers/standardize.hpp>
#include <ktnn/losses/binary_cross_entropy.hpp>
#include <ktnn/losses/cross_entropy.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/losses/mse.hpp>
#include <ktnn/losses/nll_loss.hpp>
#include <ktnn/losses/regression.hpp>
#include <ktnn/model.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/optim/adagrad.hpp>
#include <ktnn/optim/adam.hpp>
#include <ktnn/optim/clip.hpp>
#include <ktnn/optim/rmsprop.hpp>
#include <ktnn/optim/schedule.hpp>
#include <ktnn/optim/sgd.hpp>
#include <ktnn/train/fit.hpp>
#include <ktnn/train/physics.hpp>
#include <ktnn/train/progress.hpp>
#include <ktnn/train/step.hpp>
