/* placeholder */
#include "amount.h"
