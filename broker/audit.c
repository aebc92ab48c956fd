/* placeholder */
#include "audit.h"
