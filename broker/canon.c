/* placeholder */
#include "canon.h"
