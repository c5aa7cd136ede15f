// Bindings of Embedding: ids of any integer dtype (int64 inside); every id is range-checked here, so the
// kernels never index outside the table.
#include "bind/common.h"

namespace fastnn {
namespace {
using i64array = py::array_t<int64_t, py::array::c_style>;

// ids as C-contiguous int64, refusing non-integer dtypes and ids outside [0, V).
i64array ids_arg(const py::object& ids_in, int64_t V, const std::string& op) {
  py::array raw = py::array::ensure(ids_in);
  FASTNN_CHECK(raw && (raw.dtype().kind() == 'i' || raw.dtype().kind() == 'u'),
               op + ": ids must be an integer array, got dtype " + (raw ? std::string(py::str(raw.dtype())) : "?"));
  i64array ids = i64array::ensure(raw);
  const int64_t* d = ids.data();
  for (int64_t i = 0; i < int64_t(ids.size()); ++i)
    FASTNN_CHECK(d[i] >= 0 && d[i] < V, op + ": id " + std::to_string(d[i]) + " is out of range [0, " +
                                            std::to_string(V) + ") (input_dim " + std::to_string(V) + ")");
  return ids;
}
}  // namespace

void bind_embedding(py::module_& m, const KernelTable* t) {
  m.def(
      "embedding_forward",
      [t](const py::object& table_in, const py::object& ids_in) {
        const std::string op = "embedding_forward";
        farray table = as_f32_contig(table_in, "embedding_forward: table");
        FASTNN_CHECK(table.ndim() == 2, op + ": table must be 2-D (input_dim, output_dim), got " + shape_str(table));
        const int64_t V = table.shape(0), D = table.shape(1);
        i64array ids = ids_arg(ids_in, V, op);
        Shape shape(ids.shape(), ids.shape() + ids.ndim());
        shape.push_back(D);
        farray out(shape);
        py::gil_scoped_release nogil;
        t->rnn.embedding_forward(out.mutable_data(), table.data(), ids.data(), int64_t(ids.size()), V, D);
        return out;
      },
      py::arg("table"), py::arg("ids"), "Rows of table (V,D) at integer ids (any shape) -> ids.shape + (D,).");

  m.def(
      "embedding_backward",
      [t](const py::object& dout_in, const py::object& ids_in, int64_t input_dim) {
        const std::string op = "embedding_backward";
        FASTNN_CHECK(input_dim >= 0, op + ": input_dim must be >= 0");
        i64array ids = ids_arg(ids_in, input_dim, op);
        farray dout = as_f32_contig(dout_in, "embedding_backward: dout");
        const int64_t N = int64_t(ids.size());
        FASTNN_CHECK(dout.ndim() == ids.ndim() + 1, op + ": dout must have shape ids.shape + (output_dim,), got " +
                                                       shape_str(dout));
        for (int ax = 0; ax < ids.ndim(); ++ax)
          FASTNN_CHECK(dout.shape(ax) == ids.shape(ax), op + ": dout has shape " + shape_str(dout) +
                                                            ", ids have shape " + shape_str(ids));
        const int64_t D = dout.shape(dout.ndim() - 1);
        farray dtable({input_dim, D});
        py::gil_scoped_release nogil;
        t->rnn.embedding_backward(dtable.mutable_data(), dout.data(), ids.data(), N, input_dim, D);
        return dtable;
      },
      py::arg("dout"), py::arg("ids"), py::arg("input_dim"),
      "Gradient of the table (input_dim, D): dout rows summed per id, in id order (deterministic).");
}
}  // namespace fastnn
