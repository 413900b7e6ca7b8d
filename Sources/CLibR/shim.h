// Only what the C shim needs; never imported by Swift code (see notes: R.h redefines Int32).
#define R_INTERFACE_PTRS 1
#define CSTACK_DEFNS 1
#include <Rinternals.h>
#include <Rembedded.h>
#include <Rinterface.h>
#include <R_ext/Parse.h>
