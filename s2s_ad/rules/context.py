"""What a rule may ask about the call site it is generating code for."""
from ..errors import TransformError
from ..ir import Const, Global, Seq, Var


class RuleContext:
    def __init__(self, op, rule, bound, infos, env, source_error, g_scalar=False,
                 active_names=frozenset()):
        self.op = op
        self.rule = rule
        self.bound = bound
        self._infos = infos
        self._env = env
        self._error = source_error
        self.g_scalar = g_scalar      # the adjoint arrives as a scalar standing for a broadcast
        self.item = None              # position inside a sequence argument (np.stack([...]))
        self.seq_param = None
        self.active_names = active_names

    def info(self, param):
        from ..specialize import atom_info
        if param == "ans":
            return self._infos[self.op.target]
        if param in self.bound:
            atom = self.bound[param]
        else:  # `operands1`: an item of a sequence argument
            base = param.rstrip("0123456789")
            atom = self.bound[base].items[int(param[len(base):])]
        return atom_info(atom, self._infos, self._env)

    def info_of_atom(self, atom):
        from ..specialize import atom_info
        return atom_info(atom, self._infos, self._env)

    def shape(self, param):
        return self.info(param).shape

    def ndim(self, param):
        return self.info(param).ndim

    def dtype(self, param):
        return self.info(param).dtype

    def active(self, param):
        """Does the argument carry a derivative at this call site?"""
        from ..ir import atom_vars
        return any(n in self.active_names for n in atom_vars(self.bound[param]))

    def given_number(self, param):
        atom = self.bound[param]
        if isinstance(atom, Global):
            atom = Const(self._env[atom.name])
        return isinstance(atom, Const) and isinstance(atom.value, (int, float)) \
            and not isinstance(atom.value, bool)

    def static(self, *params):
        return all(self.info(p).shape is not None for p in params)

    def given(self, param):
        """False where the argument was left at a default of None."""
        atom = self.bound[param]
        return not (isinstance(atom, Const) and atom.value is None)

    def value(self, param):
        """The argument's value, which must be known when the code is generated."""
        atom = self.bound[param]
        return self._value(atom, param)

    def _value(self, atom, param):
        if isinstance(atom, Const):
            return atom.value
        if isinstance(atom, Global):
            return self._env[atom.name]
        if isinstance(atom, Seq):
            items = [self._value(a, param) for a in atom.items]
            return tuple(items) if atom.kind == "tuple" else items
        if isinstance(atom, Var):
            info = self._infos[atom.name]
            if info.kind in ("int", "bool", "str", "none") and (info.value is not None
                                                                or info.kind == "none"):
                return info.value
            if info.kind == "array" and info.shape == () and info.value is not None:
                return info.value
            if info.kind == "tuple" and all(i.kind in ("int", "none") for i in info.value):
                return tuple(i.value for i in info.value)
        raise self.error(f"the argument `{param}` of {self.rule_name} must be known when the "
                         "code is generated (a constant, an int argument or a shape)",
                         "pass it as a literal or compute it from shapes")

    @property
    def rule_name(self):
        from ..primitives import name_of
        return name_of(self.rule.prim)

    def placeholders(self):
        """({name: expression}, {name: shape}) for the names a template may use: the
        parameters, `ans`, and `<param><i>` for the items of a sequence argument."""
        from .. import astb
        from ..ir import render
        mapping = {"ans": astb.name(self.op.target)}
        shapes = {"ans": self._infos[self.op.target].shape}
        for name, atom in self.bound.items():
            mapping[name] = render(atom)
            shapes[name] = self._shape(name)
            if isinstance(atom, Seq):
                for i, sub in enumerate(atom.items):
                    mapping[f"{name}{i}"] = render(sub)
                    shapes[f"{name}{i}"] = self._shape(f"{name}{i}")
            elif isinstance(atom, Var) and self._infos[atom.name].kind in ("list", "tuple"):
                for i, item in enumerate(self._infos[atom.name].value):
                    mapping[f"{name}{i}"] = astb.subscript(render(atom), astb.const(i))
                    shapes[f"{name}{i}"] = item.shape
        return mapping, shapes

    def _shape(self, name):
        try:
            info = self.info(name)
        except (KeyError, IndexError):
            return ()
        return info.shape if info.kind == "array" else ()

    def error(self, what, advice=None) -> TransformError:
        return self._error(self.op, what, advice)

