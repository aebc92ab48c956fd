/* placeholder */
#include "jose.h"
