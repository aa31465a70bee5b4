#include "compute_nnip_deviation.h"

#include "atom.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "update.h"

#include "pair_nnip.h"

using namespace LAMMPS_NS;

ComputeNNIPDeviation::ComputeNNIPDeviation(LAMMPS *lmp, int narg, char **arg) : Compute(lmp, narg, arg)
{
  if (narg != 3) error->all(FLERR, "compute nnip/deviation takes no arguments: compute ID group nnip/deviation");
  peratom_flag = 1;
  size_peratom_cols = 0;
}

ComputeNNIPDeviation::~ComputeNNIPDeviation()
{
  memory->destroy(vector_atom);
}

void ComputeNNIPDeviation::init()
{
  pair_ = dynamic_cast<PairNNIP *>(force->pair_match("^nnip", 0));
  if (pair_ == nullptr) error->all(FLERR, "compute nnip/deviation needs pair_style nnip");
  if (pair_->members() < 2)
    error->all(FLERR, "compute nnip/deviation needs an ensemble; this model has {} member", pair_->members());
  pair_->request_deviation();
}

void ComputeNNIPDeviation::compute_peratom()
{
  invoked_peratom = update->ntimestep;
  if (atom->nmax > nmax_) {
    memory->destroy(vector_atom);
    nmax_ = atom->nmax;
    memory->create(vector_atom, nmax_, "nnip/deviation:vector_atom");
  }
  if (pair_->deviation_step() != update->ntimestep)
    error->all(FLERR, "compute nnip/deviation: no force deviation of step {} (the pair style computes it with "
               "the forces)", update->ntimestep);
  const auto &deviation = pair_->force_deviation();
  int *mask = atom->mask;
  for (int i = 0; i < atom->nlocal; i++) vector_atom[i] = (mask[i] & groupbit) ? deviation[i] : 0.0;
}

double ComputeNNIPDeviation::memory_usage()
{
  return static_cast<double>(nmax_) * sizeof(double);
}
