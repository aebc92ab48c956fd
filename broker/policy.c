/* placeholder */
#include "policy.h"
