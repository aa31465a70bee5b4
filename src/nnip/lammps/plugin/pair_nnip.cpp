#include "pair_nnip.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#ifdef __GLIBC__
#include <malloc.h>
#endif

using namespace LAMMPS_NS;

namespace {

// the package layout this plugin reads (nnip.lammps.deploy.FORMAT_VERSION)
constexpr int FORMAT_VERSION = 2;

const char *const SYMBOLS[] = {
    "X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",
    "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho",
    "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po",
    "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md",
    "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
constexpr int N_SYMBOLS = sizeof(SYMBOLS) / sizeof(SYMBOLS[0]);

int atomic_number(const std::string &symbol)
{
  for (int z = 1; z < N_SYMBOLS; z++)
    if (symbol == SYMBOLS[z]) return z;
  return 0;
}

std::string first_line(const std::string &text)
{
  auto end = text.find('\n');
  return text.substr(0, end == std::string::npos ? text.size() : end);
}

// three phantom atoms in a chain (two pairs), appended after the real ones: the compiled program's sizes
// have a minimum of 2, and a rank may hold fewer atoms or edges; phantoms touch no real atom
constexpr int PHANTOMS = 3;

// The pair style whose program runs now: the dispatcher calls the operators below by name from inside the
// compiled program, with no way to pass LAMMPS's objects, so compute() names itself here while it runs.
PairNNIP *computing = nullptr;

struct Computing {
  explicit Computing(PairNNIP *pair) { computing = pair; }
  ~Computing() { computing = nullptr; }
};

at::Tensor exchange_operator(const at::Tensor &features)
{
  return computing ? computing->exchange(features, false) : features.clone();
}

at::Tensor exchange_reverse_operator(const at::Tensor &values)
{
  return computing ? computing->exchange(values, true) : values.clone();
}

}    // namespace

// the operators of nnip.nn.halo (identities in Python), here with LAMMPS's communication
TORCH_LIBRARY(nnip, m)
{
  m.def("exchange(Tensor features) -> Tensor");
  m.def("exchange_reverse(Tensor values) -> Tensor");
}

TORCH_LIBRARY_IMPL(nnip, CompositeExplicitAutograd, m)
{
  m.impl("exchange", exchange_operator);
  m.impl("exchange_reverse", exchange_reverse_operator);
}

/* glibc's malloc gives every freed block above 32 MiB back to the kernel, so the program's large per-edge
   tensors would be faulted in anew, page by page, at every step (a quarter of a SchNet step at 10^4 atoms):
   keep freed memory in the process instead. The peak stays the same. A preloaded allocator (jemalloc,
   tcmalloc) keeps freed memory by itself and ignores these settings. */
static void keep_freed_memory()
{
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

PairNNIP::PairNNIP(LAMMPS *lmp) : Pair(lmp)
{
  keep_freed_memory();
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairNNIP::~PairNNIP()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairNNIP::allocate()
{
  allocated = 1;
  int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 1; i <= n; i++)
    for (int j = i; j <= n; j++) setflag[i][j] = 0;
}

void PairNNIP::settings(int narg, char **arg)
{
  if (narg != 0)
    error->all(FLERR, "pair_style nnip takes no arguments (got '{}'); the model file goes in pair_coeff",
               arg[0]);
}

// pair_coeff * * MODEL.pt2 El1 El2 ... (one element symbol per atom type)
void PairNNIP::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for nnip: expected '* * MODEL.pt2 Element...' (one element per atom type)");
  if (narg - 3 != ntypes)
    error->all(FLERR,
               "pair_coeff for nnip: expected {} element name(s) after the model file (one per atom type), "
               "got {}",
               ntypes, narg - 3);
  load(arg[2], narg - 3, arg + 3);
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairNNIP::load(const std::string &path, int nargs, char **symbols)
{
  {
    std::ifstream probe(path);
    if (!probe.good()) error->all(FLERR, "pair_coeff for nnip: cannot read model file {}", path);
  }
  std::unordered_map<std::string, std::string> meta;
  try {
    meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_coeff for nnip: {} is not a package written by nnip deploy lammps ({})", path,
               first_line(e.what()));
  }
  if (meta["format"] != "nnip-lammps")
    error->all(FLERR, "pair_coeff for nnip: {} is not a package written by nnip deploy lammps", path);
  try {
    int version = std::stoi(meta.at("format_version"));
    if (version > FORMAT_VERSION)
      error->all(FLERR,
                 "pair_coeff for nnip: {} was written by nnip {} in package format {}; this plugin reads "
                 "format {}: update nnip and rebuild the plugin (python -m nnip.lammps.plugin)",
                 path, meta["nnip_version"], version, FORMAT_VERSION);
    if (version < FORMAT_VERSION)
      error->all(FLERR,
                 "pair_coeff for nnip: {} was written by nnip {} in package format {}; this plugin reads "
                 "format {}: deploy the model again (nnip deploy lammps)",
                 path, meta["nnip_version"], version, FORMAT_VERSION);
    cutoff_ = std::stod(meta.at("cutoff"));
    members_ = std::stoi(meta.at("members"));
    halo_width_ = std::stoi(meta.at("halo_width"));
    variance_scale_ = std::stod(meta.at("variance_scale"));
    device_ = meta.at("device");
  } catch (const std::logic_error &e) {    // a key missing or not a number
    error->all(FLERR, "pair_coeff for nnip: {} has incomplete metadata ({})", path, e.what());
  }
  elements_.clear();
  std::istringstream numbers(meta["elements"]);
  for (long z; numbers >> z;) elements_.push_back(z);
  if (elements_.empty() || members_ < 1 || !(cutoff_ > 0.0))
    error->all(FLERR, "pair_coeff for nnip: {} has incomplete metadata", path);

  type_number_.assign(atom->ntypes + 1, 0);
  for (int t = 1; t <= nargs; t++) {
    std::string symbol = symbols[t - 1];
    long z = atomic_number(symbol);
    if (z == 0)
      error->all(FLERR, "pair_coeff for nnip: '{}' (atom type {}) is not an element symbol", symbol, t);
    if (std::find(elements_.begin(), elements_.end(), z) == elements_.end()) {
      std::string known;
      for (long e : elements_) known += std::string(known.empty() ? "" : " ") + SYMBOLS[e];
      error->all(FLERR, "pair_coeff for nnip: element {} (atom type {}) is not known to the model {} (it has {})",
                 symbol, t, path, known);
    }
    type_number_[t] = z;
  }
  int gpu = -1;
  if (device_ != "cpu") {
    if (!torch::cuda::is_available())
      error->all(FLERR, "pair_coeff for nnip: {} was compiled for {}, and this process sees no GPU", path, device_);
    gpu = comm->me % static_cast<int>(torch::cuda::device_count());    // ranks share a node's GPUs in turn
    device_ = "cuda:" + std::to_string(gpu);
  }
  try {
    model_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path, "model", false, 1, gpu);
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_coeff for nnip: cannot load {} ({})", path, first_line(e.what()));
  }
  comm_forward = halo_width_;
  comm_reverse = std::max(halo_width_, 3 * members_);
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style nnip: {} member(s), elements {}, cutoff {} A, {} on {}\n", members_,
                   meta["elements"], cutoff_, meta["dtype"], device_);
}

void PairNNIP::init_style()
{
  if (force->newton_pair == 0) error->all(FLERR, "pair_style nnip requires newton pair on");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style nnip requires units metal (eV, Angstrom, ps), not units {}", update->unit_style);
  if (!model_) error->all(FLERR, "pair_style nnip: pair_coeff * * MODEL.pt2 Element... is missing");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairNNIP::init_one(int, int)
{
  return cutoff_;
}

/* Nodes and candidate edges, when LAMMPS has rebuilt its lists (atoms and ghosts keep their indices until
   then). A ghost whose atom this rank owns (a periodic image) maps to that atom's node. The half flag makes
   a half list with each pair once over all ranks: i -> j of a pair of own atoms when i < j, or for an atom
   and its own image the direction whose first non-zero component is positive; an edge to another rank's
   atom when the own atom's tag is the smaller (that rank holds the same pair the other way round, and
   keeps it otherwise; what the pair adds to the ghost goes to its owner, nnip::exchange_reverse). */
void PairNNIP::build_graph()
{
  const int nlocal = atom->nlocal, atoms = nlocal + atom->nghost;
  tagint *tag = atom->tag;
  double **x = atom->x;
  std::unordered_map<tagint, int> own;
  own.reserve(nlocal);
  for (int i = 0; i < nlocal; i++) own.emplace(tag[i], i);
  node_of_atom_.resize(atoms);
  node_atom_.resize(nlocal);
  for (int i = 0; i < nlocal; i++) node_atom_[i] = node_of_atom_[i] = i;
  for (int g = nlocal; g < atoms; g++) {
    auto found = own.find(tag[g]);
    if (found != own.end())
      node_of_atom_[g] = found->second;
    else {
      node_of_atom_[g] = static_cast<int>(node_atom_.size());
      node_atom_.push_back(g);
    }
  }
  pair_center_.clear();
  pair_neighbor_.clear();
  pair_half_.clear();
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    const int *near = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; jj++) {
      const int j = near[jj] & NEIGHMASK, node = node_of_atom_[j];
      bool half = node >= nlocal ? tag[i] < tag[j] : i < node;
      if (node == i) {    // an image of the atom itself
        for (int a = 0; a < 3; a++) {
          const double shift = x[j][a] - x[i][a];
          if (std::fabs(shift) > 1e-6) {
            half = shift > 0;
            break;
          }
        }
      }
      pair_center_.push_back(i);
      pair_neighbor_.push_back(j);
      pair_half_.push_back(half);
    }
  }
}

// The program's inputs: the nodes (then the phantoms) and the edges within the cutoff at this step.
int PairNNIP::gather_inputs()
{
  const int nodes = static_cast<int>(node_atom_.size()), n = nodes + PHANTOMS;
  double **x = atom->x;
  int *type = atom->type;
  positions_.assign(3 * static_cast<size_t>(n), 0.0);
  numbers_.assign(n, elements_.front());
  for (int k = 0; k < nodes; k++) {
    const int i = node_atom_[k];
    for (int a = 0; a < 3; a++) positions_[3 * k + a] = x[i][a];
    numbers_[k] = type_number_[type[i]];
  }
  for (int p = 0; p < PHANTOMS; p++) positions_[3 * (nodes + p)] = static_cast<double>(p);

  centers_.clear();
  neighbors_.clear();
  half_.clear();
  shifts_.clear();
  const double cut2 = cutoff_ * cutoff_;
  for (size_t e = 0; e < pair_center_.size(); e++) {
    const int i = pair_center_[e], j = pair_neighbor_[e];
    const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
    if (dx * dx + dy * dy + dz * dz >= cut2) continue;
    const int node = node_of_atom_[j], at = node_atom_[node];
    if (pair_half_[e]) half_.push_back(static_cast<int64_t>(centers_.size()));
    centers_.push_back(i);
    neighbors_.push_back(node);
    for (int a = 0; a < 3; a++) shifts_.push_back(x[j][a] - x[at][a]);
  }
  for (int p = 0; p < 2; p++) {    // phantom pairs (nodes, nodes+1) and (nodes+1, nodes+2), both directions
    half_.push_back(static_cast<int64_t>(centers_.size()));
    centers_.push_back(nodes + p);
    neighbors_.push_back(nodes + p + 1);
    centers_.push_back(nodes + p + 1);
    neighbors_.push_back(nodes + p);
    shifts_.insert(shifts_.end(), 6, 0.0);
  }
  edge_index_.assign(centers_.begin(), centers_.end());
  edge_index_.insert(edge_index_.end(), neighbors_.begin(), neighbors_.end());
  return nodes;
}

void PairNNIP::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom) error->all(FLERR, "pair_style nnip does not compute per-atom virials (compute stress/atom)");
  if (neighbor->ago == 0 || node_of_atom_.size() != static_cast<size_t>(atom->nlocal + atom->nghost))
    build_graph();
  const int nodes = gather_inputs();
  const int64_t n = nodes + PHANTOMS, edges = static_cast<int64_t>(centers_.size());
  std::vector<at::Tensor> outputs;
  try {
    Computing guard(this);
    auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    torch::Device device(device_);
    std::vector<at::Tensor> inputs = {
        torch::from_blob(positions_.data(), {n, 3}, f64).to(device),
        torch::from_blob(numbers_.data(), {n}, i64).to(device),
        torch::from_blob(edge_index_.data(), {2, edges}, i64).to(device),
        torch::from_blob(shifts_.data(), {edges, 3}, f64).to(device),
        torch::from_blob(half_.data(), {static_cast<int64_t>(half_.size())}, i64).to(device),
        torch::full({}, static_cast<int64_t>(atom->nlocal), i64).to(device)};
    outputs = model_->run(inputs);
    for (auto &t : outputs) t = t.to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t m = members_;
    if (outputs.size() != 4 || outputs[0].numel() != m || outputs[1].numel() != m * n ||
        outputs[2].numel() != m * n * 3 || outputs[3].numel() != m * 9)
      throw std::runtime_error("the package returned outputs of unexpected shapes");
  } catch (const std::exception &e) {
    error->one(FLERR, "pair_style nnip: the model failed on step {} ({})", update->ntimestep,
               first_line(e.what()));
  }
  accumulate(outputs, nodes);
}

void PairNNIP::accumulate(const std::vector<at::Tensor> &outputs, int nodes)
{
  const int nlocal = atom->nlocal, n = nodes + PHANTOMS, count = members_;
  const double *energy = outputs[0].data_ptr<double>();
  const double *atomic = outputs[1].data_ptr<double>();
  const double *forces = outputs[2].data_ptr<double>();
  const double *virials = outputs[3].data_ptr<double>();
  double **f = atom->f;

  for (int k = 0; k < nodes; k++)
    for (int a = 0; a < 3; a++) {
      double sum = 0.0;
      for (int m = 0; m < count; m++) sum += forces[(static_cast<size_t>(m) * n + k) * 3 + a];
      f[node_atom_[k]][a] += sum / count;
    }
  if (eflag_global) {
    double sum = 0.0;
    for (int m = 0; m < count; m++) sum += energy[m];
    eng_vdwl += sum / count;
  }
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++) {
      double sum = 0.0;
      for (int m = 0; m < count; m++) sum += atomic[static_cast<size_t>(m) * n + i];
      eatom[i] += sum / count;
    }
  if (vflag_global) {
    const int pairs[6][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 1}, {0, 2}, {1, 2}};
    for (int v = 0; v < 6; v++) {
      double sum = 0.0;
      for (int m = 0; m < count; m++) {
        const double *w = virials + 9 * m;
        sum += 0.5 * (w[3 * pairs[v][0] + pairs[v][1]] + w[3 * pairs[v][1] + pairs[v][0]]);
      }
      virial[v] += sum / count;
    }
  }
  if (count > 1 && deviation_wanted_) member_deviation(forces, nodes);
}

// the members' forces summed onto owned atoms over all ranks, then their spread per owned atom
void PairNNIP::member_deviation(const double *forces, int nodes)
{
  const int nlocal = atom->nlocal, width = 3 * members_, n = nodes + PHANTOMS;
  member_forces_.assign(static_cast<size_t>(nlocal + atom->nghost) * width, 0.0);
  for (int k = 0; k < nodes; k++)
    for (int m = 0; m < members_; m++)
      for (int a = 0; a < 3; a++)
        member_forces_[static_cast<size_t>(node_atom_[k]) * width + 3 * m + a] =
            forces[(static_cast<size_t>(m) * n + k) * 3 + a];
  rows_ = member_forces_.data();
  row_width_ = width;
  rows_are_nodes_ = false;
  comm->reverse_comm(this, width);
  deviation_.assign(nlocal, 0.0);
  for (int i = 0; i < nlocal; i++) {
    const double *row = member_forces_.data() + static_cast<size_t>(i) * width;
    double variance = 0.0;
    for (int a = 0; a < 3; a++) {
      double mean = 0.0;
      for (int m = 0; m < members_; m++) mean += row[3 * m + a];
      mean /= members_;
      for (int m = 0; m < members_; m++) variance += (row[3 * m + a] - mean) * (row[3 * m + a] - mean);
    }
    deviation_[i] = std::sqrt(variance_scale_ * variance / (members_ - 1));
  }
  deviation_step_ = update->ntimestep;
}

at::Tensor PairNNIP::exchange(const at::Tensor &features, bool reverse)
{
  const int nlocal = atom->nlocal, nodes = static_cast<int>(node_atom_.size());
  at::Tensor rows = features.to(torch::TensorOptions().device(torch::kCPU).dtype(torch::kFloat64), false, true)
                        .contiguous();
  if (rows.dim() < 1 || rows.size(0) < nodes)
    throw std::runtime_error("nnip::exchange: features with fewer rows than nodes on this rank");
  const int width = static_cast<int>(rows.numel() / rows.size(0));
  if (width > halo_width_) throw std::runtime_error("nnip::exchange: features wider than the package said");
  rows_ = rows.data_ptr<double>();
  row_width_ = width;
  rows_are_nodes_ = true;
  if (width > 0) {
    if (!reverse)
      comm->forward_comm(this, width);
    else {
      comm->reverse_comm(this, width);
      std::fill(rows_ + static_cast<size_t>(nlocal) * width, rows_ + static_cast<size_t>(nodes) * width, 0.0);
    }
  }
  // the compiled program reads the result with the input's strides (the operator's fake is empty_like)
  at::Tensor out = at::empty_like(features);
  out.copy_(rows.view(features.sizes()));
  return out;
}

// forward: rows of the atoms LAMMPS sends (own atoms, or ghosts received in an earlier swap)
int PairNNIP::pack_forward_comm(int count, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  int m = 0;
  for (int i = 0; i < count; i++) {
    const double *row = rows_ + static_cast<size_t>(row_of(list[i])) * row_width_;
    for (int c = 0; c < row_width_; c++) buf[m++] = row[c];
  }
  return m;
}

// into the nodes of other ranks' atoms; an image of an own atom already has its atom's row
void PairNNIP::unpack_forward_comm(int count, int first, double *buf)
{
  const int nlocal = atom->nlocal;
  for (int i = first; i < first + count; i++) {
    const int row = row_of(i);
    if (row >= nlocal || !rows_are_nodes_)
      std::copy(buf, buf + row_width_, rows_ + static_cast<size_t>(row) * row_width_);
    buf += row_width_;
  }
}

// reverse: each ghost's row to its owner; an image of an own atom sends nothing (its node is the atom's)
int PairNNIP::pack_reverse_comm(int count, int first, double *buf)
{
  const int nlocal = atom->nlocal;
  int m = 0;
  for (int i = first; i < first + count; i++) {
    const int row = row_of(i);
    const bool owned_here = rows_are_nodes_ && row < nlocal;
    const double *values = rows_ + static_cast<size_t>(row) * row_width_;
    for (int c = 0; c < row_width_; c++) buf[m++] = owned_here ? 0.0 : values[c];
  }
  return m;
}

void PairNNIP::unpack_reverse_comm(int count, int *list, double *buf)
{
  int m = 0;
  for (int i = 0; i < count; i++) {
    double *row = rows_ + static_cast<size_t>(row_of(list[i])) * row_width_;
    for (int c = 0; c < row_width_; c++) row[c] += buf[m++];
  }
}

void *PairNNIP::extract_peratom(const char *name, int &ncol)
{
  if (strcmp(name, "force_std") == 0 && members_ > 1) {
    ncol = 0;
    return deviation_.data();
  }
  return nullptr;
}

double PairNNIP::memory_usage()
{
  return static_cast<double>((positions_.size() + shifts_.size() + member_forces_.size()) * sizeof(double) +
                             (numbers_.size() + edge_index_.size() + centers_.size() + neighbors_.size() +
                              half_.size()) * sizeof(int64_t) +
                             (node_atom_.size() + node_of_atom_.size() + 2 * pair_center_.size()) * sizeof(int) +
                             pair_half_.size());
}
