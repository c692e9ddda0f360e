#pragma once
#include <memory>

#include "lowbit/dse/explore.hpp"

namespace lowbit::dse {

// Defined by mpi_ranks.cpp, or by no_mpi_ranks.cpp (which refuses) when lowbit is built without MPI.
std::unique_ptr<Ranks> make_mpi_ranks(int* argc, char*** argv);

}  // namespace lowbit::dse
