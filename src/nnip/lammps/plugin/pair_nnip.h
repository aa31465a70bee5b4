/* pair_style nnip: an nnip potential or ensemble, deployed with `nnip deploy lammps`, in LAMMPS.

   Each rank evaluates a graph of its own atoms and of the ghost atoms (within one cutoff plus skin) that
   other ranks own; a ghost that is a periodic image of one of the rank's own atoms is that atom, reached
   by an edge with a shift vector. Message-passing models refresh the other ranks' atoms' node features
   between layers: the deployed program calls the operators nnip::exchange (a forward communication) and,
   in its gradient, nnip::exchange_reverse (a reverse communication), which this pair style implements with
   LAMMPS's communication. So any number of layers needs no wider ghost shell, and results do not depend
   on the number of ranks. The energy counted on a rank is that of its own atoms; forces on ghosts go to
   their owners (newton on). */

#ifndef LMP_PAIR_NNIP_H
#define LMP_PAIR_NNIP_H

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}
namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace LAMMPS_NS {

class PairNNIP : public Pair {
 public:
  PairNNIP(class LAMMPS *);
  ~PairNNIP() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  void *extract_peratom(const char *, int &) override;
  double memory_usage() override;

  // ghost atoms' rows of `features` (N >= atoms on this rank, ...) from their owners, or (reverse) added to
  // their owners' and zeroed: the operators nnip::exchange and nnip::exchange_reverse while this pair computes
  at::Tensor exchange(const at::Tensor &features, bool reverse);

  int members() const { return members_; }
  void request_deviation() { deviation_wanted_ = true; }
  // per owned atom: standard deviation of the members' forces, sqrt(sum over x, y, z of the variance),
  // eV/Angstrom, of the step `deviation_step()`
  const std::vector<double> &force_deviation() const { return deviation_; }
  long long deviation_step() const { return deviation_step_; }

 private:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> model_;
  std::string device_;
  int members_ = 1, halo_width_ = 0;
  double cutoff_ = 0.0, variance_scale_ = 1.0;
  std::vector<long> elements_;          // atomic numbers the model knows
  std::vector<long> type_number_;       // LAMMPS atom type -> atomic number

  // the graph, rebuilt with LAMMPS's neighbour lists: nodes are the own atoms, then the other ranks' ghosts
  std::vector<int> node_atom_;          // node -> atom
  std::vector<int> node_of_atom_;       // atom (own or ghost) -> node (an image of an own atom -> that atom)
  std::vector<int> pair_center_, pair_neighbor_;    // candidate edges: own atom -> atom, within cutoff + skin
  std::vector<char> pair_half_;         // one direction of each pair

  // inputs of the program, kept between steps
  std::vector<double> positions_, shifts_;
  std::vector<int64_t> numbers_, edge_index_, half_, centers_, neighbors_;

  double *rows_ = nullptr;              // what pack/unpack move: rows of `row_width_` values
  int row_width_ = 0;
  bool rows_are_nodes_ = false;         // rows per node (features) or per atom (member forces)
  std::vector<double> member_forces_;   // atoms x 3M, summed over ranks by reverse communication
  std::vector<double> deviation_;
  long long deviation_step_ = -1;
  bool deviation_wanted_ = false;

  void allocate();
  void load(const std::string &path, int nargs, char **symbols);
  void build_graph();
  int gather_inputs();
  int row_of(int atom) const { return rows_are_nodes_ ? node_of_atom_[atom] : atom; }
  void accumulate(const std::vector<at::Tensor> &outputs, int atoms);
  void member_deviation(const double *forces, int atoms);
};

}    // namespace LAMMPS_NS

#endif
