"""The op set as autograd Functions, one module per op group (basic, linear, activation, conv, loss, norm,
math, array)."""
