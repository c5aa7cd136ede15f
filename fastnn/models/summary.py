"""model.summary(): Keras 3's table (keras/utils/summary_utils.py, rendered as rich renders it). Chains show
Layer (type) | Output Shape | Param #; graphs that are not a chain add "Connected to" (Keras 3's
``layer_name[node][tensor]`` of each input), with long cells wrapped onto more lines."""
import shutil
import textwrap

from fastnn._naming import shape_str


def _readable_size(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _column_widths(line_length, positions):
    """Cell widths (with the one-space padding each side) as rich sizes Keras's fixed-width columns."""
    positions = [int(line_length * p) for p in positions] if positions[-1] <= 1 else list(positions)
    widths, current = [], 0
    for pos in positions:
        widths.append(pos - current + 2)
        current = pos
    max_width = line_length - (len(widths) + 1)  # box edges and separators
    excess = sum(widths) - max_width
    if excess > 0:  # rich's ratio_reduce with equal ratios
        remaining, ratio_left, reduced = excess, len(widths), []
        for w in widths:
            cut = min(w, round(remaining / ratio_left))
            reduced.append(w - cut)
            remaining -= cut
            ratio_left -= 1
        widths = reduced
    return widths


def _cell(text, width, right=False):
    inner = width - 2
    text = text if len(text) <= inner else text[:max(inner - 1, 0)] + "…"
    return " " + (text.rjust(inner) if right else text.ljust(inner)) + " "


def _shape_text(layer):
    shape = layer._output_shape
    return "[" + ", ".join(shape_str(s) for s in shape) + "]" if isinstance(shape, list) else shape_str(shape)


def _connections(layer, nodes):
    """Keras 3's "Connected to" cell: ``layer[node index][tensor index]`` of each input of each of the layer's
    calls inside this model."""
    parts = []
    for node in layer._inbound_nodes:
        if node in nodes:
            for t in node.inputs:
                source, node_index, tensor_index = t._keras_history
                parts.append(f"{source.name}[{node_index}][{tensor_index}]")
    return ", ".join(parts) or "-"


def _type_name(layer):
    """Keras prints a graph model's class as Functional."""
    name = type(layer).__name__
    return "Functional" if name == "Model" and hasattr(layer, "_nodes") else name


def _rows(model, graph):
    """(layer cell, shape cell, params cell, connected cell) per layer."""
    nodes = set(model._nodes) if graph else ()
    for layer in model._summary_layers():
        yield (f"{layer.name} ({_type_name(layer)})", _shape_text(layer) if layer.built else "?",
               f"{layer.count_params():,}" if layer.built else "0 (unbuilt)",
               _connections(layer, nodes) if graph else None)


def summary_text(model, line_length=None, positions=None):
    graph = model._summary_is_graph()
    if line_length is None:
        line_length = min(108 if graph else 88, shutil.get_terminal_size((80, 24)).columns - 4)
    widths = _column_widths(line_length, positions or ([0.3, 0.56, 0.74, 1.0] if graph else [0.45, 0.80, 1.0]))

    def rule(left, mid, right, fill):
        return left + mid.join(fill * w for w in widths) + right

    def row(cells, sep="│"):
        if not graph:
            return [sep + sep.join(_cell(c, w, right=(i == 2)) for i, (c, w) in enumerate(zip(cells, widths))) + sep]
        wrapped = [textwrap.wrap(c, max(w - 2, 1), break_long_words=False, break_on_hyphens=False) or [""]
                   for c, w in zip(cells, widths)]  # a word too long for its line is cut with "…" (rich)
        height = max(len(w) for w in wrapped)
        return [sep + sep.join(_cell(w[k] if k < len(w) else "", width, right=(i == 2))
                               for i, (w, width) in enumerate(zip(wrapped, widths))) + sep for k in range(height)]

    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if graph else [])
    lines = [f'Model: "{model.name}"', rule("┏", "┳", "┓", "━")] + row(header, "┃") + [rule("┡", "╇", "┩", "━")]
    for i, cells in enumerate(_rows(model, graph)):
        if i:
            lines.append(rule("├", "┼", "┤", "─"))
        lines += row(list(cells[:4] if graph else cells[:3]))
    lines.append(rule("└", "┴", "┘", "─"))
    total = sum(v.value.size for v in model.weights)
    trainable = sum(v.value.size for v in model.trainable_weights)
    lines.append(f" Total params: {total:,} ({_readable_size(total * 4)})")
    lines.append(f" Trainable params: {trainable:,} ({_readable_size(trainable * 4)})")
    lines.append(f" Non-trainable params: {total - trainable:,} ({_readable_size((total - trainable) * 4)})")
    if model.optimizer is not None and model.optimizer.built:
        count = model.optimizer.count_params()
        lines.append(f" Optimizer params: {count:,} ({_readable_size(count * 4)})")
    return "\n".join(lines)


def print_summary(model, line_length=None, positions=None, print_fn=None):
    text = summary_text(model, line_length, positions)
    if print_fn is None:
        from fastnn.distribution.data_parallel import writes
        if writes():  # under DataParallel only rank 0 prints
            print(text)
    else:
        for line in text.split("\n"):
            print_fn(line)
