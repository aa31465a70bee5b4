/* compute ID group nnip/deviation: per-atom standard deviation of the forces of an ensemble deployed with
   pair_style nnip (eV/Angstrom; DeePMD's model deviation), for dump, compute reduce and fix halt. */

#ifndef LMP_COMPUTE_NNIP_DEVIATION_H
#define LMP_COMPUTE_NNIP_DEVIATION_H

#include "compute.h"

namespace LAMMPS_NS {

class ComputeNNIPDeviation : public Compute {
 public:
  ComputeNNIPDeviation(class LAMMPS *, int, char **);
  ~ComputeNNIPDeviation() override;
  void init() override;
  void compute_peratom() override;
  double memory_usage() override;

 private:
  class PairNNIP *pair_ = nullptr;
  int nmax_ = 0;
};

}    // namespace LAMMPS_NS

#endif
