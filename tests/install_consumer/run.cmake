# Installs ktnn into a scratch prefix, then configures, builds and runs a
# consumer project that finds it with find_package(ktnn).
foreach(var KTNN_SOURCE_DIR KTNN_WORK_DIR CMAKE_CXX_COMPILER KTNN_GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_consumer: ${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${KTNN_WORK_DIR})
set(prefix ${KTNN_WORK_DIR}/prefix)

function(run_step)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: '${ARGV}' failed (${rc}):\n${out}\n${err}")
  endif()
endfunction()

# The same Kokkos the enclosing build found (a hand-built one included).
set(kokkos_hint "")
if(KTNN_KOKKOS_DIR)
  set(kokkos_hint -DKokkos_DIR=${KTNN_KOKKOS_DIR})
endif()
run_step(${CMAKE_COMMAND} -S ${KTNN_SOURCE_DIR} -B ${KTNN_WORK_DIR}/ktnn-build -G ${KTNN_GENERATOR}
         -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER} -DCMAKE_INSTALL_PREFIX=${prefix} ${kokkos_hint}
         -DKTNN_ENABLE_TESTS=OFF -DKTNN_ENABLE_EXAMPLES=OFF -DKTNN_ENABLE_BENCHMARKS=OFF
         -DKTNN_ENABLE_MPI=${KTNN_ENABLE_MPI})
run_step(${CMAKE_COMMAND} --install ${KTNN_WORK_DIR}/ktnn-build)
run_step(${CMAKE_COMMAND} -S ${KTNN_SOURCE_DIR}/tests/install_consumer -B ${KTNN_WORK_DIR}/consumer-build
         -G ${KTNN_GENERATOR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release ${kokkos_hint})
run_step(${CMAKE_COMMAND} --build ${KTNN_WORK_DIR}/consumer-build)
# Installed with KTNN_ENABLE_MPI, the package finds MPI for ktnn::mpi itself:
# the consumer's data-parallel program was configured and linked.
if(KTNN_ENABLE_MPI AND NOT EXISTS ${KTNN_WORK_DIR}/consumer-build/consumer_mpi)
  message(FATAL_ERROR "install_consumer: ktnn was installed with KTNN_ENABLE_MPI, "
                      "but the consumer found no ktnn::mpi target")
endif()
execute_process(COMMAND ${KTNN_WORK_DIR}/consumer-build/consumer RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "consumer says: ${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer: ktnn 0\\.1\\.0, loss fell from .*; checkpoint restored")
  message(FATAL_ERROR "install_consumer: the consumer failed (${rc}):\n${out}\n${err}")
endif()
